package io.github.dl4jcnnplugins.samples.yolo.detection;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Greedy non-maximum suppression, per image and per class. */
public final class Nms {
    private Nms() {
    }

    /**
     * Keeps, per image and class, the highest-scoring detections, dropping every detection whose IoU with an
     * already kept one exceeds {@code iouThreshold}; at most {@code maxPerImage} survivors per image (best first).
     * The input is not modified; the result is sorted by image, then by descending score.
     */
    public static List<Detection> apply(List<Detection> detections, double iouThreshold, int maxPerImage) {
        List<Detection> sorted = new ArrayList<>(detections);
        sorted.sort(Comparator.comparingInt(Detection::image).thenComparing(Comparator.comparingDouble(Detection::score).reversed()));
        List<Detection> out = new ArrayList<>();
        int i = 0;
        while (i < sorted.size()) {
            int image = sorted.get(i).image();
            List<Detection> kept = new ArrayList<>();
            for (; i < sorted.size() && sorted.get(i).image() == image; i++) {
                Detection d = sorted.get(i);
                if (kept.size() >= maxPerImage) {
                    continue;
                }
                boolean suppressed = false;
                for (Detection k : kept) {
                    if (k.cls() == d.cls() && k.box().iou(d.box()) > iouThreshold) {
                        suppressed = true;
                        break;
                    }
                }
                if (!suppressed) {
                    kept.add(d);
                }
            }
            out.addAll(kept);
        }
        return out;
    }
}
