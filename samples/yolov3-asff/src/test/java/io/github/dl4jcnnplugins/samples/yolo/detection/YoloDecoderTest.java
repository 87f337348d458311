package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.deeplearning4j.nn.layers.objdetect.DetectedObject;
import org.deeplearning4j.nn.layers.objdetect.YoloUtils;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class YoloDecoderTest {
    /** A hand-made activated output: one confident box in cell (x=2, y=1) of a 4x4 grid, prior 1. */
    @Test
    void decodesOneBoxToPixels() {
        int c = 2, per = 5 + c;
        INDArray out = Nd4j.zeros(DataType.FLOAT, 1, 3 * per, 4, 4);
        int b = 1;
        out.putScalar(new long[]{0, b * per, 1, 2}, 0.5);       // x offset
        out.putScalar(new long[]{0, b * per + 1, 1, 2}, 0.25);  // y offset
        out.putScalar(new long[]{0, b * per + 2, 1, 2}, 2.0);   // w, grid units
        out.putScalar(new long[]{0, b * per + 3, 1, 2}, 1.0);   // h
        out.putScalar(new long[]{0, b * per + 4, 1, 2}, 0.8);   // objectness
        out.putScalar(new long[]{0, b * per + 5, 1, 2}, 0.25);  // class 0
        out.putScalar(new long[]{0, b * per + 6, 1, 2}, 0.75);  // class 1
        List<Detection> d = YoloDecoder.decode(out, 8, c, 0.3, 5);
        assertEquals(1, d.size());
        Detection x = d.get(0);
        assertEquals(5, x.image());
        assertEquals(1, x.cls());
        assertEquals(0.6, x.score(), 1e-6);
        // centre (2.5 * 8, 1.25 * 8) = (20, 10), size (16, 8)
        assertEquals(12, x.box().x1(), 1e-5);
        assertEquals(6, x.box().y1(), 1e-5);
        assertEquals(28, x.box().x2(), 1e-5);
        assertEquals(14, x.box().y2(), 1e-5);
    }

    /** Agrees with DL4J's YoloUtils on the activated output of random pre-activations. */
    @Test
    void agreesWithYoloUtils() {
        Nd4j.getRandom().setSeed(3);
        int c = 3;
        INDArray priors = Nd4j.create(new double[][]{{1, 1.5}, {2, 2}, {3, 1}}).castTo(DataType.FLOAT);
        INDArray pre = Nd4j.randn(DataType.FLOAT, 2, 3 * (5 + c), 4, 4);
        INDArray act = YoloUtils.activate(priors, pre);
        List<DetectedObject> ref = YoloUtils.getPredictedObjects(priors, act, 0.6, 0);
        List<Detection> ours = YoloDecoder.decode(act, 16, c, 0.0, 0);
        for (DetectedObject o : ref) {
            double[] tl = o.getTopLeftXY(), br = o.getBottomRightXY();
            Box expect = new Box(tl[0] * 16, tl[1] * 16, br[0] * 16, br[1] * 16);
            // (M2.1's DetectedObject comes back with an empty class vector here, so only box and objectness are compared;
            // with the class probabilities summing to one, the per-class scores sum to the objectness)
            double scoreSum = ours.stream().filter(d -> d.image() == o.getExampleNumber()
                    && Math.abs(d.box().x1() - expect.x1()) < 1e-3 && Math.abs(d.box().y1() - expect.y1()) < 1e-3
                    && Math.abs(d.box().x2() - expect.x2()) < 1e-3 && Math.abs(d.box().y2() - expect.y2()) < 1e-3)
                    .mapToDouble(Detection::score).sum();
            boolean found = Math.abs(scoreSum - o.getConfidence()) < 1e-4;
            assertTrue(found, "no decoded box for " + o);
        }
        assertTrue(!ref.isEmpty());
    }
}
