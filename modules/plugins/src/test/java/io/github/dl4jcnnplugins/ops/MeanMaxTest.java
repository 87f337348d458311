package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link MeanMax}'s float host route: against the separate {@link Mean} and {@link Max} (the route the double-precision
 * parity tests and gradient checks cover), both in float inside the plug-in runtime (output and every gradient, with
 * slices longer than the kernels' block: 48 x 48 = 2304 pixels); and its kernels on ties and NaN, where PyTorch's rule
 * is the reference: the first maximal element (the first NaN) is the maximum and takes its gradient.
 */
class MeanMaxTest {
    @ParameterizedTest
    @CsvSource({"false", "true"})
    void hostRouteEqualsSeparateOps(boolean overChannels) {
        assertRoutesAgree(() -> new PoolGateLayer(overChannels), new long[] {2, 5, 48, 48}, false);
    }

    /**
     * With {@code ties}, the network's input is 0 except at three pixels, so its 1x1 convolution (bias initialised to
     * 0) gives every channel 0 at all other pixels: their channels tie, and the spatial attention's convolution carries
     * the gradient of those pixels' maxima back (a ReLU-sparse feature map, as CBAM meets after a backbone block).
     */
    @ParameterizedTest
    @CsvSource({"false", "true"})
    void cbamHostRouteEqualsSeparateOps(boolean ties) {
        assertRoutesAgree(() -> new Cbam.Builder().reduction(4).spatialKernel(3).build(), new long[] {2, 16, 9, 11},
                ties);
    }

    @Test
    void theFirstNaNIsTheMaximum() {
        // channel 0: 1 NaN 5 7, channel 1: 2 3 4 NaN (one row of 4 pixels)
        INDArray x = Nd4j.createFromArray(new float[] {1, Float.NaN, 5, 7, 2, 3, 4, Float.NaN}).reshape(1, 2, 1, 4);
        List<INDArray> overPixels = forward(x, 2, 3);
        assertEquals(List.of(Float.NaN, Float.NaN), values(overPixels.get(1)));
        assertEquals(List.of(1f, 3f), values(overPixels.get(2)));
        List<INDArray> overChannels = forward(x, 1);
        assertEquals(List.of(2f, Float.NaN, 5f, Float.NaN), values(overChannels.get(1)));
        assertEquals(List.of(1f, 0f, 0f, 1f), values(overChannels.get(2)));
    }

    @Test
    void tiesGoToTheFirstMaximum() {
        int pixels = 48 * 48;   // over the pixels: two blocks (2048 + 256); over the channels: two (1152 + 1152)
        INDArray x = Nd4j.zeros(DataType.FLOAT, 1, 3, 48, 48);
        INDArray flat = x.reshape(3, pixels);
        flat.putScalar(0, 100, 5).putScalar(0, 2100, 5).putScalar(0, 2200, 5);   // channel 0: 5 thrice, else 0
        flat.putScalar(1, 7, 1);                                                   // pixel 7: 0 1 0
        flat.putScalar(0, 1500, -2);                                               // pixel 1500: -2 0 0
        List<INDArray> overPixels = forward(x, 2, 3);
        assertEquals(List.of(100f, 7f, 0f), values(overPixels.get(2)));        // channel 2 is all 0: pixel 0
        List<INDArray> overChannels = forward(x, 1);
        INDArray pos = overChannels.get(2).reshape(pixels);
        assertEquals(0f, pos.getFloat(0), 0);                                    // 0 0 0
        assertEquals(1f, pos.getFloat(7), 0);
        assertEquals(1f, pos.getFloat(1500), 0);
        assertEquals(0f, pos.getFloat(2100), 0);
        assertEquals(pixels - 2, pos.eq(0).castTo(DataType.INT32).sumNumber().intValue());

        // the gradient: dL/dmean / n everywhere, dL/dmax at those positions only
        INDArray gMean = Nd4j.createFromArray(new float[] {2304, 4608, 0}).reshape(1, 3, 1, 1);
        INDArray gMax = Nd4j.createFromArray(new float[] {10, 20, 30}).reshape(1, 3, 1, 1);
        INDArray dx = backward(x, gMean, gMax, overPixels.get(2), 2, 3).reshape(3, pixels);
        INDArray expected = Nd4j.zeros(DataType.FLOAT, 3, pixels);
        expected.getRow(0).addi(1).putScalar(100, 11);
        expected.getRow(1).addi(2).putScalar(7, 22);
        expected.putScalar(2, 0, 30);
        assertEquals(expected, dx);
        INDArray gMaxC = Nd4j.ones(DataType.FLOAT, 1, 1, 48, 48);
        INDArray dxC = backward(x, Nd4j.zeros(DataType.FLOAT, 1, 1, 48, 48), gMaxC, overChannels.get(2), 1)
                .reshape(3, pixels);
        INDArray expectedC = Nd4j.zeros(DataType.FLOAT, 3, pixels);
        expectedC.getRow(0).addi(1).putScalar(7, 0).putScalar(1500, 0);
        expectedC.putScalar(1, 7, 1).putScalar(1, 1500, 1);
        assertEquals(expectedC, dxC);
    }

    private static List<Float> values(INDArray a) {
        List<Float> v = new java.util.ArrayList<>();
        for (float f : a.data().asFloat()) {
            v.add(f);
        }
        return v;
    }

    private static List<INDArray> forward(INDArray x, int... dims) {
        MeanMax.Forward op = new MeanMax.Forward();
        op.addIArgument(1);
        op.addIArgument(dims);
        long[] s = x.shape().clone();
        for (int d : dims) {
            s[d] = 1;
        }
        List<INDArray> out = List.of(Nd4j.create(DataType.FLOAT, s), Nd4j.create(DataType.FLOAT, s),
                Nd4j.create(DataType.FLOAT, s));
        op.compute(List.of(x), out);
        return out;
    }

    private static INDArray backward(INDArray x, INDArray gMean, INDArray gMax, INDArray pos, int... dims) {
        MeanMax.Backward op = new MeanMax.Backward();
        op.addIArgument(1);
        op.addIArgument(dims);
        INDArray dx = Nd4j.create(DataType.FLOAT, x.shape());
        op.compute(List.of(x, gMean, gMax, pos), List.of(dx));
        return dx;
    }

    private static void assertRoutesAgree(Supplier<PluginLayer> layer, long[] shape, boolean ties) {
        INDArray x = PluginHarness.randn(1, shape).mul(2);
        if (ties) {
            INDArray keep = Nd4j.zeros(DataType.DOUBLE, shape[0], 1, shape[2], shape[3]);
            keep.putScalar(new long[] {0, 0, 1, 2}, 1).putScalar(new long[] {0, 0, 3, 0}, 1)
                    .putScalar(new long[] {1, 0, 2, 1}, 1);
            x.muli(keep);
        }
        Map<String, INDArray> host = run(layer, shape, x, "true");
        Map<String, INDArray> separate = run(layer, shape, x, "false");
        PluginHarness.assertAllClose(separate, host, 1e-5);
        assertTrue(host.get("output").sumNumber().doubleValue() != 0);
    }

    private static Map<String, INDArray> run(Supplier<PluginLayer> layer, long[] shape, INDArray x, String hostOps) {
        return PluginHarness.withSystemProperty(HostOp.PROPERTY, hostOps, () -> {
            ComputationGraph net = PluginHarness.checkNetwork(layer.get(), shape, 42).convertDataType(DataType.FLOAT);
            return PluginHarness.outputAndGradients(net, x.castTo(DataType.FLOAT),
                    PluginHarness.randn(2, shape[0], 3).castTo(DataType.FLOAT));
        });
    }
}
