package io.github.dl4jcnnplugins.samples.yolo.detection;

/** A predicted object: image index, class index, score (objectness x class probability) and box in pixels. */
public record Detection(int image, int cls, double score, Box box) {
}
