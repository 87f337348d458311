package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.QuietStdout;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pointwise convolutions as a batched matrix product ({@link Conv.Pointwise#PRODUCT}) against SameDiff's native
 * {@code conv2d}: output and every gradient, with and without bias.
 */
class PointwiseConvTest {

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void productEqualsTheNativeConvolution(boolean bias) {
        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 3, 5, 4, 6);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 7, 5, 1, 1);
        INDArray b = Nd4j.randn(DataType.DOUBLE, 7);
        INDArray upstream = Nd4j.randn(DataType.DOUBLE, 3, 7, 4, 6);
        Map<String, INDArray> product = withStrategy("product", () -> run(x, w, bias ? b : null, upstream, true));
        Map<String, INDArray> reference = run(x, w, bias ? b : null, upstream, false);
        assertArrayEquals(new long[]{3, 7, 4, 6}, product.get("y").shape());
        for (String k : reference.keySet()) {
            double err = PluginHarness.relativeError(reference.get(k), product.get(k));
            assertTrue(err < 1e-12, k + ": relative error " + err);
        }
        assertEquals(bias ? 4 : 3, product.size());
    }

    @Test
    void strategyFollowsThePropertyAndOnlyPointwiseConvolutionsQualify() {
        assertTrue(withStrategy("product", Conv::pointwiseAsProduct));
        assertFalse(withStrategy("native", Conv::pointwiseAsProduct));
        assertEquals(!Conv.oneDnnActive(), withStrategy("auto", Conv::pointwiseAsProduct));
        assertTrue(Conv.isPointwise(Conv.Spec.of(1, 1, 0)));
        assertTrue(Conv.isPointwise(Conv.Spec.of(1, 1, 0, 2, 1)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 2, 0)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 1, 1)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(1, 1, 0, 1, 2)));
        assertFalse(Conv.isPointwise(Conv.Spec.of(3, 1, 1)));
        PluginHarness.assertErrorMentions(() -> withStrategy("fast", Conv::pointwiseAsProduct),
                Conv.POINTWISE_PROPERTY, "fast");
    }

    private static <T> T withStrategy(String value, java.util.function.Supplier<T> action) {
        String before = System.getProperty(Conv.POINTWISE_PROPERTY);
        System.setProperty(Conv.POINTWISE_PROPERTY, value);
        try {
            return action.get();
        } finally {
            if (before == null) {
                System.clearProperty(Conv.POINTWISE_PROPERTY);
            } else {
                System.setProperty(Conv.POINTWISE_PROPERTY, before);
            }
        }
    }

    /** Output and gradients of {@code sum(conv(x) * upstream)}; {@code sized}: give the input size (pointwise route). */
    private static Map<String, INDArray> run(INDArray x, INDArray w, INDArray b, INDArray upstream, boolean sized) {
        SameDiff sd = SameDiff.create();
        SDVariable xv = sd.var("x", x.dup());
        SDVariable wv = sd.var("w", w.dup());
        SDVariable bv = b == null ? null : sd.var("b", b.dup());
        Conv.Spec spec = Conv.Spec.of(1, 1, 0);
        SDVariable y = sized ? Conv.conv2d(sd, xv, wv, bv, 5, 7, spec, 4, 6) : Conv.conv2d(sd, xv, wv, bv, 5, 7, spec);
        sd.setLossVariables(y.mul(sd.constant(upstream)).sum());
        Map<String, INDArray> out = new HashMap<>();
        out.put("y", y.eval());
        String[] wrt = b == null ? new String[]{"x", "w"} : new String[]{"x", "w", "b"};
        out.putAll(QuietStdout.call(() -> sd.calculateGradients(Map.of(), wrt)));
        return out;
    }
}
