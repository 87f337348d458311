package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.QuietStdout;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Groups-1 convolutions as matrix products ({@link Conv.Dense#PRODUCTS}: one batched product for 1x1 kernels, im2col
 * and one batched product otherwise) against SameDiff's native {@code conv2d} ({@link Conv.Dense#NATIVE}): output
 * and every gradient in double, with and without bias, for strides, paddings, dilations and non-square kernels.
 */
class DenseConvTest {
    record Case(Conv.Spec spec, boolean bias) {
        @Override
        public String toString() {
            return spec + (bias ? " with bias" : "");
        }
    }

    static List<Case> cases() {
        return List.of(
                new Case(Conv.Spec.of(1, 1, 0), true),
                new Case(Conv.Spec.of(1, 1, 0), false),
                new Case(Conv.Spec.of(3, 1, 1), true),
                new Case(Conv.Spec.of(3, 2, 1), false),
                new Case(Conv.Spec.of(1, 2, 0), true),
                new Case(Conv.Spec.of(3, 1, 2, 2, 1), true),
                new Case(new Conv.Spec(3, 2, 1, 2, 0, 1, 1, 1, 1), true),
                new Case(Conv.Spec.of(7, 1, 0), false));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void productsEqualTheNativeConvolution(Case c) {
        Nd4j.getRandom().setSeed(3);
        long n = 2, in = 3, out = 4, h = 9, w = 8;
        INDArray x = Nd4j.randn(DataType.DOUBLE, n, in, h, w);
        INDArray weight = Nd4j.randn(DataType.DOUBLE, out, in, c.spec().kH(), c.spec().kW());
        INDArray b = c.bias() ? Nd4j.randn(DataType.DOUBLE, out) : null;
        INDArray upstream = Nd4j.randn(DataType.DOUBLE, n, out, c.spec().outH(h), c.spec().outW(w));
        Map<String, INDArray> products = withStrategy("products", () -> run(x, weight, b, upstream, c.spec()));
        Map<String, INDArray> reference = withStrategy("native", () -> run(x, weight, b, upstream, c.spec()));
        assertArrayEquals(upstream.shape(), products.get("y").shape());
        PluginHarness.assertAllClose(reference, products, 1e-12);
    }

    /** Depthwise convolutions (multiplier 1 and 2) as dense ones with block-diagonal weights, against the native op. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void depthwiseAsBlockDiagonalEqualsTheNativeOp(int multiplier) {
        Nd4j.getRandom().setSeed(5);
        long n = 2, c = 3, h = 7, w = 6, out = c * multiplier;
        Conv.Spec spec = Conv.Spec.of(3, 1, 1, 1, (int) c);
        INDArray x = Nd4j.randn(DataType.DOUBLE, n, c, h, w);
        INDArray weight = Nd4j.randn(DataType.DOUBLE, out, 1, 3, 3);
        INDArray b = Nd4j.randn(DataType.DOUBLE, out);
        INDArray upstream = Nd4j.randn(DataType.DOUBLE, n, out, h, w);
        Map<String, INDArray> products = withStrategy("products", () -> run(x, weight, b, upstream, spec));
        Map<String, INDArray> reference = withStrategy("native", () -> run(x, weight, b, upstream, spec));
        PluginHarness.assertAllClose(reference, products, 1e-12);
    }

    @Test
    void strategyFollowsThePropertyAndPointwiseMeansOneByOneStrideOneUnpadded() {
        assertTrue(withStrategy("products", Conv::denseAsProducts));
        assertFalse(withStrategy("native", Conv::denseAsProducts));
        assertEquals(!Conv.oneDnnActive(), withStrategy("auto", Conv::denseAsProducts));
        assertTrue(Conv.isPointwise(Conv.Spec.of(1, 1, 0)));
        assertTrue(Conv.isPointwise(Conv.Spec.of(1, 1, 0, 2, 1)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 2, 0)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 1, 1)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 1, 0, 1, 2)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(3, 1, 1)));
        PluginHarness.assertErrorMentions(() -> withStrategy("fast", Conv::denseAsProducts),
                Conv.DENSE_PROPERTY, "fast");
    }

    private static <T> T withStrategy(String value, Supplier<T> action) {
        return PluginHarness.withSystemProperty(Conv.DENSE_PROPERTY, value, action);
    }

    /** Output and gradients of {@code sum(conv(x) * upstream)}. */
    private static Map<String, INDArray> run(INDArray x, INDArray w, INDArray b, INDArray upstream, Conv.Spec spec) {
        SameDiff sd = SameDiff.create();
        SDVariable xv = sd.var("x", x.dup());
        SDVariable wv = sd.var("w", w.dup());
        SDVariable bv = b == null ? null : sd.var("b", b.dup());
        SDVariable y = Conv.conv2d(sd, xv, wv, bv, x.size(1), w.size(0), spec, x.size(2), x.size(3));   // groups from spec
        sd.setLossVariables(y.mul(sd.constant(upstream)).sum());
        Map<String, INDArray> out = new HashMap<>();
        out.put("y", y.eval());
        String[] wrt = b == null ? new String[]{"x", "w"} : new String[]{"x", "w", "b"};
        out.putAll(QuietStdout.call(() -> sd.calculateGradients(Map.of(), wrt)));
        return out;
    }
}
