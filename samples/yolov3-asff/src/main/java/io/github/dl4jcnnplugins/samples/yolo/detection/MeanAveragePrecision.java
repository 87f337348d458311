package io.github.dl4jcnnplugins.samples.yolo.detection;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Detection mAP, written once for the sample (DL4J has none).
 *
 * <p>Per class: detections sorted by descending score are matched greedily (as pycocotools does), each to the
 * still unmatched ground truth of the same image and class with the highest IoU, if that IoU is at least the
 * threshold; otherwise the detection is a false positive (so a duplicate of a matched object is one). Each ground
 * truth is matched at most once.
 * Precision is made monotone (running maximum from the right) and AP is computed either by all-point
 * interpolation (VOC 2010+: area under the precision envelope) or on 101 recall points 0, 0.01, ..., 1 (COCO).
 * mAP is the mean over the classes that have at least one ground truth; classes with no ground truth are skipped.
 * COCO-style mAP@[.5:.95] is the mean of the 101-point mAP at IoU 0.50, 0.55, ..., 0.95.
 */
public final class MeanAveragePrecision {
    private MeanAveragePrecision() {
    }

    /** All-point interpolated mAP at one IoU threshold (VOC 2010+ style); e.g. mAP@0.5. */
    public static double map(List<Detection> dets, List<GroundTruth> gts, int numClasses, double iouThreshold) {
        return mean(dets, gts, numClasses, iouThreshold, false);
    }

    /** COCO-style mAP@[.5:.95]: 101-point interpolated AP, averaged over IoU 0.50:0.05:0.95 and over classes. */
    public static double mapCoco(List<Detection> dets, List<GroundTruth> gts, int numClasses) {
        double sum = 0;
        for (int t = 0; t < 10; t++) {
            sum += mean(dets, gts, numClasses, 0.5 + 0.05 * t, true);
        }
        return sum / 10;
    }

    private static double mean(List<Detection> dets, List<GroundTruth> gts, int numClasses, double thr, boolean coco) {
        double sum = 0;
        int n = 0;
        for (int c = 0; c < numClasses; c++) {
            double ap = averagePrecision(dets, gts, c, thr, coco);
            if (!Double.isNaN(ap)) {
                sum += ap;
                n++;
            }
        }
        return n == 0 ? 0 : sum / n;
    }

    /**
     * AP of class {@code cls} at IoU threshold {@code thr}; NaN when the class has no ground truth.
     *
     * @param coco101 101-point interpolation (COCO) instead of all-point (VOC 2010+)
     */
    public static double averagePrecision(List<Detection> dets, List<GroundTruth> gts, int cls, double thr, boolean coco101) {
        List<GroundTruth> g = new ArrayList<>();
        for (GroundTruth t : gts) {
            if (t.cls() == cls) {
                g.add(t);
            }
        }
        if (g.isEmpty()) {
            return Double.NaN;
        }
        List<Detection> d = new ArrayList<>();
        for (Detection x : dets) {
            if (x.cls() == cls) {
                d.add(x);
            }
        }
        d.sort(Comparator.comparingDouble(Detection::score).reversed());
        boolean[] used = new boolean[g.size()];
        double[] precision = new double[d.size()];
        double[] recall = new double[d.size()];
        int tp = 0;
        for (int i = 0; i < d.size(); i++) {
            Detection det = d.get(i);
            int best = -1;
            double bestIou = -1;
            for (int j = 0; j < g.size(); j++) {
                GroundTruth t = g.get(j);
                if (used[j] || t.image() != det.image()) {
                    continue;
                }
                double iou = det.box().iou(t.box());
                if (iou > bestIou) {
                    bestIou = iou;
                    best = j;
                }
            }
            if (best >= 0 && bestIou >= thr) {
                used[best] = true;
                tp++;
            }
            precision[i] = tp / (double) (i + 1);
            recall[i] = tp / (double) g.size();
        }
        // precision envelope: running maximum from the right
        for (int i = d.size() - 2; i >= 0; i--) {
            precision[i] = Math.max(precision[i], precision[i + 1]);
        }
        if (coco101) {
            double s = 0;
            int k = 0;
            for (int r = 0; r <= 100; r++) {
                double level = r / 100.0;
                while (k < d.size() && recall[k] < level - 1e-12) {
                    k++;
                }
                s += k < d.size() ? precision[k] : 0;
            }
            return s / 101;
        }
        double ap = 0;
        double prevRecall = 0;
        for (int i = 0; i < d.size(); i++) {
            ap += (recall[i] - prevRecall) * precision[i];
            prevRecall = recall[i];
        }
        return ap;
    }
}
