package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BoundedActivationTest {
    private static final int PERIOD = 6;   // 5 + 1 class

    private static boolean isWh(long channel) {
        long k = channel % PERIOD;
        return k == 2 || k == 3;
    }

    @Test
    void boundsOnlyWidthAndHeightLogits() {
        Nd4j.getRandom().setSeed(1);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 2, 2 * PERIOD, 3, 3).muli(20);
        INDArray y = new BoundedActivation(4, PERIOD).getActivation(x.dup(), true);
        for (long c = 0; c < 2 * PERIOD; c++) {
            for (int n = 0; n < 2; n++) {
                for (int i = 0; i < 3; i++) {
                    double in = x.getDouble(n, c, i, 0), out = y.getDouble(n, c, i, 0);
                    double expected = isWh(c) ? 4 * Math.tanh(in / 4) : in;
                    assertEquals(expected, out, 1e-12, "channel " + c);
                }
            }
        }
    }

    @Test
    void backpropMatchesFiniteDifferences() {
        Nd4j.getRandom().setSeed(2);
        BoundedActivation f = new BoundedActivation(4, PERIOD);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 1, 2 * PERIOD, 2, 2).muli(5);
        INDArray eps = Nd4j.randn(DataType.DOUBLE, 1, 2 * PERIOD, 2, 2);
        INDArray grad = f.backprop(x.dup(), eps).getFirst();
        double h = 1e-6;
        for (long c = 0; c < 2 * PERIOD; c++) {
            INDArray p = x.dup(), m = x.dup();
            p.putScalar(new long[]{0, c, 1, 0}, x.getDouble(0, c, 1, 0) + h);
            m.putScalar(new long[]{0, c, 1, 0}, x.getDouble(0, c, 1, 0) - h);
            double numeric = (f.getActivation(p, true).mul(eps).sumNumber().doubleValue()
                    - f.getActivation(m, true).mul(eps).sumNumber().doubleValue()) / (2 * h);
            assertEquals(numeric, grad.getDouble(0, c, 1, 0), 1e-6, "channel " + c);
        }
    }

    @Test
    void periodZeroBoundsEverything() {
        INDArray y = new BoundedActivation(4).getActivation(Nd4j.valueArrayOf(new long[]{1, 7}, 3.0, DataType.DOUBLE), true);
        assertEquals(4 * Math.tanh(0.75), y.maxNumber().doubleValue(), 1e-12);
        assertEquals(4 * Math.tanh(0.75), y.minNumber().doubleValue(), 1e-12);
    }

    @Test
    void survivesJsonRoundTrip() {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().list()
                .layer(new ConvolutionLayer.Builder(1, 1).nIn(2).nOut(2 * PERIOD).activation(new BoundedActivation(4, PERIOD)).build())
                .build();
        Layer back = MultiLayerConfiguration.fromJson(conf.toJson()).getConf(0).getLayer();
        assertEquals(new BoundedActivation(4, PERIOD), ((ConvolutionLayer) back).getActivationFn());
    }

    @Test
    void rejectsBadSettings() {
        assertThrows(IllegalArgumentException.class, () -> new BoundedActivation(0, PERIOD));
        assertThrows(IllegalArgumentException.class, () -> new BoundedActivation(4, 3));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new BoundedActivation(4, PERIOD).getActivation(Nd4j.zeros(1, 7, 2, 2), true));
        assertTrue(e.getMessage().contains("period 6"), e.getMessage());
    }
}
