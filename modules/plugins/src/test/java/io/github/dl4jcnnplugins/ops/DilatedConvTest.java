package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.QuietStdout;
import io.github.dl4jcnnplugins.conv.Rfb;
import io.github.dl4jcnnplugins.pyramid.Aspp;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceModules;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import io.github.dl4jcnnplugins.torch.StateDictImport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Dilated convolutions computed as space-to-batch ({@link Conv}'s class comment) against an independent reference
 * that works on every ND4J build: the same convolution at dilation 1 with the kernel spread out by zeros
 * ({@code d (k - 1) + 1} taps, weights at multiples of {@code d}). Outputs and the gradients of input, weight and
 * bias, in double precision; awkward sizes (H, W not multiples of d, smaller than the dilated kernel, padding not a
 * multiple of d, anisotropic dilation, groups).
 */
class DilatedConvTest {

    @AfterEach
    void resetStrategy() {
        Conv.dilatedStrategy(Conv.Dilated.AUTO);
    }

    /** n, c, h, w, out, kH, kW, pH, pW, dH, dW, groups, bias. */
    record Case(int n, int c, int h, int w, int out, int kH, int kW, int pH, int pW, int dH, int dW, int groups,
                boolean bias) {
        Conv.Spec spec() {
            return new Conv.Spec(kH, kW, 1, 1, pH, pW, dH, dW, groups);
        }

        @Override
        public String toString() {
            return n + "x" + c + "x" + h + "x" + w + " -> " + out + ", k " + kH + "x" + kW + ", p " + pH + "x" + pW
                    + ", d " + dH + "x" + dW + ", groups " + groups + (bias ? ", bias" : "");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 3, 7, 5, 4, 3, 3, 2, 2, 2, 2, 1, true),      // ASPP/RFB style p = d, odd sizes
                new Case(1, 2, 5, 4, 3, 3, 3, 3, 3, 3, 3, 1, false),     // RFB's 2v+1 = 3 on a 5x4 input
                new Case(2, 2, 5, 4, 2, 3, 3, 6, 6, 6, 6, 1, true),      // d larger than H and W: most taps in padding
                new Case(3, 2, 9, 8, 3, 3, 3, 1, 0, 2, 3, 1, true),      // padding not a multiple of d, anisotropic
                new Case(1, 3, 6, 7, 2, 3, 5, 0, 4, 1, 2, 1, true),      // dilation on one axis only, 3x5 kernel
                new Case(2, 4, 7, 6, 6, 3, 3, 2, 2, 2, 2, 2, true),      // grouped
                new Case(2, 3, 6, 5, 6, 3, 3, 3, 3, 3, 3, 3, false));    // depthwise, channel multiplier 2
    }

    @ParameterizedTest
    @MethodSource("cases")
    void spaceToBatchEqualsTheZeroSpreadKernel(Case c) {
        compare(c, DataType.DOUBLE, 1e-12, Conv.Dilated.SPACE_TO_BATCH);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void im2colEqualsTheZeroSpreadKernel(Case c) {
        compare(c, DataType.DOUBLE, 1e-12, Conv.Dilated.IM2COL);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void tapsEqualTheZeroSpreadKernel(Case c) {
        compare(c, DataType.DOUBLE, 1e-12, Conv.Dilated.TAPS);
    }

    /**
     * Float32, where the oneDNN builds run their kernels (they have no float64 convolution, so there the double
     * checks exercise libnd4j's own code).
     */
    @ParameterizedTest
    @MethodSource("cases")
    void spaceToBatchEqualsTheZeroSpreadKernelInFloat(Case c) {
        compare(c, DataType.FLOAT, 1e-5, Conv.Dilated.SPACE_TO_BATCH);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void im2colEqualsTheZeroSpreadKernelInFloat(Case c) {
        compare(c, DataType.FLOAT, 1e-5, Conv.Dilated.IM2COL);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void tapsEqualTheZeroSpreadKernelInFloat(Case c) {
        compare(c, DataType.FLOAT, 1e-5, Conv.Dilated.TAPS);
    }

    private static void compare(Case c, DataType type, double tolerance, Conv.Dilated strategy) {
        Nd4j.getRandom().setSeed(7);
        INDArray x = Nd4j.randn(type, c.n, c.c, c.h, c.w);
        INDArray w = Nd4j.randn(type, c.out, c.c / c.groups, c.kH, c.kW);
        INDArray b = Nd4j.randn(type, c.out);
        Conv.Spec spec = c.spec();
        long oh = spec.outH(c.h);
        long ow = spec.outW(c.w);
        INDArray upstream = Nd4j.randn(type, c.n, c.out, oh, ow);

        Map<String, INDArray> ours = run(x, w, b, upstream, c, strategy);
        int sh = c.dH * (c.kH - 1) + 1;
        int sw = c.dW * (c.kW - 1) + 1;
        INDArray spread = Nd4j.zeros(type, c.out, c.c / c.groups, sh, sw);
        spread.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, c.dH, sh),
                NDArrayIndex.interval(0, c.dW, sw)).assign(w);
        Map<String, INDArray> ref = run(x, spread, b, upstream, c, null);

        assertArrayEquals(new long[]{c.n, c.out, oh, ow}, ours.get("y").shape());
        assertClose(ref.get("y"), ours.get("y"), "output", tolerance);
        assertClose(ref.get("x"), ours.get("x"), "input gradient", tolerance);
        assertClose(ref.get("w").get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, c.dH, sh),
                NDArrayIndex.interval(0, c.dW, sw)), ours.get("w"), "weight gradient", tolerance);
        if (c.bias) {
            assertClose(ref.get("b"), ours.get("b"), "bias gradient", tolerance);
        }
    }

    /**
     * Output and gradients of {@code sum(conv(x) * upstream)}: the dilated convolution computed by {@code strategy},
     * or (null) the undilated reference.
     */
    private static Map<String, INDArray> run(INDArray x, INDArray w, INDArray b, INDArray upstream, Case c,
                                             Conv.Dilated strategy) {
        SameDiff sd = SameDiff.create();
        SDVariable xv = sd.var("x", x.dup());
        SDVariable wv = sd.var("w", w.dup());
        SDVariable bv = c.bias ? sd.var("b", b.dup()) : null;
        SDVariable y;
        if (strategy != null) {
            Conv.dilatedStrategy(strategy);
            y = Conv.conv2d(sd, xv, wv, bv, c.c, c.out, c.spec(), c.h, c.w);
        } else {
            y = Conv.conv2d(sd, xv, wv, bv, c.c, c.out, new Conv.Spec((int) w.size(2), (int) w.size(3), 1, 1, c.pH,
                    c.pW, 1, 1, c.groups));
        }
        SDVariable loss = y.mul(sd.constant(upstream)).sum();
        sd.setLossVariables(loss);
        Map<String, INDArray> out = new HashMap<>();
        out.put("y", y.eval());
        List<String> wrt = c.bias ? List.of("x", "w", "b") : List.of("x", "w");
        Map<String, INDArray> grads = QuietStdout.call(() -> sd.calculateGradients(Map.of(), wrt.toArray(new String[0])));
        out.putAll(grads);
        return out;
    }

    private static void assertClose(INDArray expected, INDArray actual, String what, double tolerance) {
        double err = PluginHarness.relativeError(expected, actual);
        assertTrue(err < tolerance, what + ": relative error " + err);
    }

    @Test
    void onlyStrideOneDilatedConvolutionsTakeAnotherRoute() {
        for (Conv.Dilated strategy : List.of(Conv.Dilated.SPACE_TO_BATCH, Conv.Dilated.IM2COL, Conv.Dilated.TAPS)) {
            Conv.dilatedStrategy(strategy);
            assertEquals(strategy, Conv.route(Conv.Spec.of(3, 1, 2, 2, 1), 16, 16));
            assertEquals(Conv.Dilated.NATIVE, Conv.route(Conv.Spec.of(3, 2, 2, 2, 1), 16, 16), "strided: native op");
            assertEquals(Conv.Dilated.NATIVE, Conv.route(Conv.Spec.of(3, 1, 1, 1, 1), 16, 16), "undilated: native op");
        }
        Conv.dilatedStrategy(Conv.Dilated.NATIVE);
        assertEquals(Conv.Dilated.NATIVE, Conv.route(Conv.Spec.of(3, 1, 2, 2, 1), 16, 16));
        Conv.dilatedStrategy(Conv.Dilated.AUTO);
        boolean oneDnn = Conv.oneDnnActive();
        // ASPP's rates on a 32x32 map read 77% / 56% / 39% inside the image: per-tap products on every build
        assertEquals(0.765625, Conv.insideFraction(Conv.Spec.of(3, 1, 6, 6, 1), 32, 32), 1e-12);
        assertEquals(0.5625, Conv.insideFraction(Conv.Spec.of(3, 1, 12, 12, 1), 32, 32), 1e-12);
        assertEquals(0.390625, Conv.insideFraction(Conv.Spec.of(3, 1, 18, 18, 1), 32, 32), 1e-12);
        for (int rate : new int[]{6, 12, 18}) {
            assertEquals(Conv.Dilated.TAPS, Conv.route(Conv.Spec.of(3, 1, rate, rate, 1), 32, 32), "rate " + rate);
        }
        // RFB's rates 2 and 3 on 19x19 (87% / 80% inside): space-to-batch on oneDNN, the native op elsewhere
        assertEquals(oneDnn ? Conv.Dilated.SPACE_TO_BATCH : Conv.Dilated.NATIVE,
                Conv.route(Conv.Spec.of(3, 1, 3, 3, 1), 19, 19));
        // large dilation on a map that pads little (sub-grids of 3 pixels): im2col on oneDNN
        assertEquals(oneDnn ? Conv.Dilated.IM2COL : Conv.Dilated.NATIVE, Conv.route(Conv.Spec.of(3, 1, 1, 12, 1), 32, 32));
        // depthwise convolutions never take the taps route
        assertEquals(oneDnn ? Conv.Dilated.SPACE_TO_BATCH : Conv.Dilated.NATIVE,
                Conv.route(Conv.Spec.of(3, 1, 6, 6, 4), 32, 32));
    }

    @Test
    void dilatedConvolutionWithoutInputSizeIsExplained() {
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.var("x", Nd4j.zeros(DataType.DOUBLE, 1, 1, 4, 4));
        SDVariable w = sd.var("w", Nd4j.zeros(DataType.DOUBLE, 1, 1, 3, 3));
        PluginHarness.assertErrorMentions(() -> Conv.conv2d(sd, x, w, null, 1, 1, Conv.Spec.of(3, 1, 2, 2, 1)),
                "dilated convolution (dilation 2x2)", "needs the input height and width", "Conv.conv2d(..., spec, h, w)");
        PluginHarness.assertErrorMentions(() -> Conv.parseDilated("fast"),
                Conv.DILATED_PROPERTY, "auto, native, space_to_batch, im2col, taps", "got 'fast'");
        assertEquals(Conv.Dilated.SPACE_TO_BATCH, Conv.parseDilated("space-to-batch"));
        assertEquals(Conv.Dilated.TAPS, Conv.parseDilated("taps"));
        assertEquals(Conv.Dilated.AUTO, Conv.parseDilated(null));
    }

    /**
     * ASPP and RFB in float32 (the precision the oneDNN builds accelerate) against the PyTorch goldens, with the
     * current (AUTO) strategy: space-to-batch on a oneDNN build, the native op elsewhere. Float tolerance.
     */
    @Test
    void asppAndRfbMatchPyTorchInFloat() {
        for (String module : List.of("ASPP", "RFB")) {
            for (String name : PluginHarness.goldenNames(module)) {
                PluginHarness.Golden g = PluginHarness.golden(name);
                List<INDArray> inputs = new ArrayList<>();
                List<long[]> shapes = new ArrayList<>();
                for (int i = 0; g.arrays().containsKey("input." + i); i++) {
                    inputs.add(g.arrays().get("input." + i).castTo(DataType.FLOAT));
                    shapes.add(inputs.get(i).shape());
                }
                ComputationGraph net = ReferenceRunner.network(ReferenceModules.create(g.module(), g.args()), shapes,
                        DataType.FLOAT);
                StateDictImport.load(net, ReferenceRunner.VERTEX, g.arrays(), "");
                Map<String, INDArray> ours = ReferenceRunner.run(net, inputs.toArray(new INDArray[0]),
                        g.arrays().get("grad.upstream"));
                // Some gradients are zero up to rounding (a BatchNorm bias feeding another BatchNorm), where
                // float32 leaves residues: scales are floored at 1e-2 of the case's largest gradient.
                double gradScale = g.arrays().entrySet().stream().filter(e -> e.getKey().startsWith("grad."))
                        .mapToDouble(e -> e.getValue().amaxNumber().doubleValue()).max().orElse(1);
                for (Map.Entry<String, INDArray> e : ours.entrySet()) {
                    INDArray ref = g.arrays().get(e.getKey());
                    if (ref != null) {
                        double diff = ref.sub(e.getValue().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
                        double floor = e.getKey().startsWith("grad.") ? 1e-2 * gradScale : 0;
                        double err = diff / Math.max(ref.amaxNumber().doubleValue(), floor);
                        assertTrue(err < 1e-4, name + " " + e.getKey() + " (float32): relative error " + err);
                    }
                }
            }
        }
    }

    /** ASPP and RFB through space-to-batch on any build: golden parity with PyTorch and a gradient check. */
    @Test
    void asppAndRfbMatchPyTorchThroughSpaceToBatch() {
        Conv.dilatedStrategy(Conv.Dilated.SPACE_TO_BATCH);
        for (String module : List.of("ASPP", "RFB")) {
            for (String name : PluginHarness.goldenNames(module)) {
                PluginHarness.assertGoldenParity(name);
            }
        }
        PluginHarness.assertGradientsCheck(() -> new Aspp.Builder().nOut(2).rates(2, 3).build(), new long[]{2, 2, 5, 4});
        PluginHarness.assertGradientsCheckSampled(() -> new Rfb.Builder().nOut(6).stride(2).scale(0.5).visual(2).build(),
                new long[]{2, 16, 5, 4}, 12);
    }
}
