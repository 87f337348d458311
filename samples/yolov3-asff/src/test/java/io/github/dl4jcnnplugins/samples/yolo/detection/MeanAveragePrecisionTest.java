package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** mAP against hand-computed cases. */
class MeanAveragePrecisionTest {
    private static final Box A = new Box(0, 0, 10, 10);
    private static final Box B = new Box(20, 20, 40, 40);

    private static GroundTruth gt(int img, int cls, Box b) {
        return new GroundTruth(img, cls, b);
    }

    private static Detection det(int img, int cls, double score, Box b) {
        return new Detection(img, cls, score, b);
    }

    @Test
    void noDetectionsGiveZero() {
        List<GroundTruth> g = List.of(gt(0, 0, A));
        assertEquals(0, MeanAveragePrecision.map(List.of(), g, 1, 0.5));
        assertEquals(0, MeanAveragePrecision.mapCoco(List.of(), g, 1));
    }

    @Test
    void allCorrectGiveOne() {
        List<GroundTruth> g = List.of(gt(0, 0, A), gt(0, 1, B), gt(1, 0, B));
        List<Detection> d = List.of(det(0, 0, 0.9, A), det(0, 1, 0.8, B), det(1, 0, 0.7, B));
        assertEquals(1, MeanAveragePrecision.map(d, g, 2, 0.5), 1e-12);
        assertEquals(1, MeanAveragePrecision.mapCoco(d, g, 2), 1e-12);
    }

    @Test
    void duplicateIsAFalsePositive() {
        // TP (0.9), FP duplicate (0.8), TP on the second object (0.7): P = 1, 1/2, 2/3 at R = 1/2, 1/2, 1
        // envelope: 1 at R 1/2, 2/3 at R 1 -> AP = 0.5 * 1 + 0.5 * 2/3 = 5/6
        List<GroundTruth> g = List.of(gt(0, 0, A), gt(0, 0, B));
        List<Detection> d = List.of(det(0, 0, 0.9, A), det(0, 0, 0.8, A), det(0, 0, 0.7, B));
        assertEquals(5.0 / 6, MeanAveragePrecision.map(d, g, 1, 0.5), 1e-12);
        // 101-point: recall levels 0..0.50 -> 1 (51 points), 0.51..1 -> 2/3 (50 points)
        assertEquals((51 + 50 * 2.0 / 3) / 101, MeanAveragePrecision.averagePrecision(d, g, 0, 0.5, true), 1e-12);
    }

    @Test
    void duplicateRankedLastDoesNotLowerAp() {
        List<GroundTruth> g = List.of(gt(0, 0, A));
        List<Detection> d = List.of(det(0, 0, 0.9, A), det(0, 0, 0.1, A));
        assertEquals(1, MeanAveragePrecision.map(d, g, 1, 0.5), 1e-12);
    }

    @Test
    void wrongClassScoresNothingAndClassesWithoutTruthAreSkipped() {
        List<GroundTruth> g = List.of(gt(0, 0, A));
        List<Detection> d = List.of(det(0, 1, 0.9, A));   // class 1 has no ground truth: skipped, not averaged as 0
        assertEquals(0, MeanAveragePrecision.map(d, g, 3, 0.5), 1e-12);
        List<Detection> both = List.of(det(0, 1, 0.9, A), det(0, 0, 0.5, A));
        assertEquals(1, MeanAveragePrecision.map(both, g, 3, 0.5), 1e-12);
    }

    @Test
    void wrongImageDoesNotMatch() {
        List<GroundTruth> g = List.of(gt(0, 0, A));
        assertEquals(0, MeanAveragePrecision.map(List.of(det(1, 0, 0.9, A)), g, 1, 0.5), 1e-12);
    }

    @Test
    void iouThresholdIsInclusiveAndCocoAveragesThresholds() {
        // shifted by 2 of 10: IoU = 80 / 120 = 2/3: a match at 0.50, 0.55, 0.60, 0.65 only -> COCO mAP 4/10
        Box shifted = new Box(2, 0, 12, 10);
        assertEquals(2.0 / 3, A.iou(shifted), 1e-12);
        List<GroundTruth> g = List.of(gt(0, 0, A));
        List<Detection> d = List.of(det(0, 0, 0.9, shifted));
        assertEquals(1, MeanAveragePrecision.map(d, g, 1, 2.0 / 3), 1e-12);
        assertEquals(0, MeanAveragePrecision.map(d, g, 1, 0.7), 1e-12);
        assertEquals(0.4, MeanAveragePrecision.mapCoco(d, g, 1), 1e-12);
    }

    @Test
    void crowdOfOverlapsMatchesEachTruthOnce() {
        // three overlapping truths in a row, boxes 10 wide shifted by 4; detections exactly on each, plus a
        // detection between the first two (IoU 6/14 < 0.5 with both) ranked first.
        List<GroundTruth> g = new ArrayList<>();
        List<Detection> d = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Box b = new Box(4 * i, 0, 4 * i + 10, 10);
            g.add(gt(0, 0, b));
            d.add(det(0, 0, 0.8 - 0.1 * i, b));
        }
        d.add(det(0, 0, 0.95, new Box(2, 0, 12, 10)));   // IoU 8/12 = 2/3 with truths 0 and 1
        // ranked: 0.95 takes truth 0 (first best), 0.8 (truth 0 box) -> best unmatched is truth 1 (IoU 6/14 < .5): FP,
        // 0.7 -> truth 1 TP, 0.6 -> truth 2 TP: P = 1, 1/2, 2/3, 3/4 at R = 1/3, 1/3, 2/3, 1
        // envelope: 1 (R 1/3), 3/4 (R 2/3), 3/4 (R 1) -> AP = 1/3 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6
        assertEquals(5.0 / 6, MeanAveragePrecision.map(d, g, 1, 0.5), 1e-12);
    }
}
