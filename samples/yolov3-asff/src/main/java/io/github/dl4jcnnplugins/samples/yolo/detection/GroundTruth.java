package io.github.dl4jcnnplugins.samples.yolo.detection;

/** A true object: image index, class index and box in pixels. */
public record GroundTruth(int image, int cls, Box box) {
}
