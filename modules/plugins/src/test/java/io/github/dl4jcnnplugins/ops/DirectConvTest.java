package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * oneDNN's convolution called directly ({@link DirectConv}) against the convolution as im2col and matrix products
 * ({@link Conv.Dense#PRODUCTS}, no oneDNN convolution involved), both in float inside the plug-in runtime: output and
 * every gradient of a small network (input, weights, bias, the layers around it). Runs where an ND4J oneDNN build is
 * loaded ({@code mvn -Ponednn test}; CI runs it so); elsewhere only the routing checks run.
 */
class DirectConvTest {
    record Case(Conv.Spec spec, boolean transposed, int channels, int outChannels) {
        Case(Conv.Spec spec, boolean transposed) {
            this(spec, transposed, 3);
        }

        Case(Conv.Spec spec, boolean transposed, int channels) {
            this(spec, transposed, channels, channels + 1);
        }

        @Override
        public String toString() {
            return channels + " -> " + outChannels + " channels, " + spec + (transposed ? ", transposed input view" : "");
        }
    }

    static List<Case> cases() {
        return List.of(
                new Case(Conv.Spec.of(1, 1, 0), false),                      // pointwise
                new Case(Conv.Spec.of(1, 2, 0), false),                      // strided 1x1 (right padding -1 on 8)
                new Case(Conv.Spec.of(3, 1, 1), false),
                new Case(Conv.Spec.of(3, 2, 1), true),
                new Case(Conv.Spec.of(3, 1, 2, 2, 1), false),                // ASPP / RFB style p = d
                new Case(Conv.Spec.of(3, 1, 6, 6, 1), false),                // dilation larger than the map
                new Case(new Conv.Spec(3, 2, 1, 2, 0, 3, 2, 3, 1), true),    // anisotropic, padding not d
                new Case(new Conv.Spec(3, 3, 2, 2, 2, 2, 2, 2, 1), false),   // strided and dilated
                new Case(Conv.Spec.of(5, 1, 0), false),
                new Case(Conv.Spec.of(3, 1, 2, 2, 1), false, 32),            // oneDNN's blocked layouts: reorders
                new Case(Conv.Spec.of(1, 1, 0), true, 32),
                new Case(Conv.Spec.of(3, 1, 1, 1, 32), false, 32, 32),       // depthwise (GhostModule): jit_dw, blocked
                new Case(Conv.Spec.of(3, 2, 1, 1, 16), true, 16, 32),        // depthwise, multiplier 2, strided
                new Case(Conv.Spec.of(3, 1, 2, 2, 32), false, 32, 32),       // dilated depthwise
                new Case(Conv.Spec.of(3, 1, 1, 1, 2), false, 8, 6));         // grouped, not depthwise
    }

    @ParameterizedTest
    @MethodSource("cases")
    void directEqualsProducts(Case c) {
        assumeTrue(DirectConv.available(), "no ND4J oneDNN build loaded");
        Map<String, INDArray> direct = run(c, "direct");
        Map<String, INDArray> products = run(c, "products");
        PluginHarness.assertAllClose(products, direct, 1e-5);
    }

    /** Output and every gradient of the check network in float, convolutions built with {@code strategy}. */
    private static Map<String, INDArray> run(Case c, String strategy) {
        return PluginHarness.withSystemProperty(Conv.DENSE_PROPERTY, strategy, () -> {
            long[] shape = {2, c.channels(), 9, 8};
            ComputationGraph net = PluginHarness.checkNetwork(new ConvLayer(c.outChannels(), c.spec(), c.transposed()),
                            shape, 42)
                    .convertDataType(DataType.FLOAT);
            return PluginHarness.outputAndGradients(net, PluginHarness.randn(1, shape).castTo(DataType.FLOAT),
                    PluginHarness.randn(2, 2, 3).castTo(DataType.FLOAT));
        });
    }

    @Test
    void blockedLayoutsAreCovered() {
        assumeTrue(DirectConv.available(), "no ND4J oneDNN build loaded");
        // the 32-channel dilated case above: oneDNN picks blocked layouts for its backward passes on AVX2 / AVX-512
        Dnnl.Shape s = new Dnnl.Shape(2, 32, 9, 8, 33, 3, 3, 1, 1, 2, 2, 2, 2, 1);
        assumeTrue(Dnnl.reorders(Dnnl.Kind.BACKWARD_WEIGHTS, s) || Dnnl.reorders(Dnnl.Kind.BACKWARD_DATA, s),
                "oneDNN chose plain layouts on this CPU: " + Dnnl.implementation(Dnnl.Kind.BACKWARD_WEIGHTS, s));
    }

    @Test
    void directRouteOnlyForFloatPluginGraphs() {
        SameDiff plain = SameDiff.create();
        Conv.Spec dilated = Conv.Spec.of(3, 1, 2, 2, 1);
        assertFalse(DirectConv.applies(plain, DataType.FLOAT, dilated, 3, 4, 9, 8), "not a plug-in graph");
        HostOp.markPluginGraph(plain);
        assertFalse(DirectConv.applies(plain, DataType.DOUBLE, dilated, 3, 4, 9, 8), "oneDNN has no float64 convolution");
        assertFalse(DirectConv.applies(plain, DataType.FLOAT, Conv.Spec.of(3, 1, 1, 1, 2), 3, 4, 9, 8),
                "groups do not divide the channels");
        assertEquals(DirectConv.available(), DirectConv.applies(plain, DataType.FLOAT, dilated, 3, 4, 9, 8));
        PluginHarness.withSystemProperty(DirectConv.PROPERTY, "false", () -> {
            assertFalse(DirectConv.applies(plain, DataType.FLOAT, dilated, 3, 4, 9, 8), "switched off");
            return null;
        });
    }

    /** A oneDNN route other than the convolution's: its switch-off property and whether it applies. */
    record Route(String property, java.util.function.BiPredicate<SameDiff, DataType> applies) {
        @Override
        public String toString() {
            return property;
        }
    }

    static List<Route> otherRoutes() {
        return List.of(new Route(DirectEltwise.PROPERTY, DirectEltwise::applies));
    }

    @ParameterizedTest
    @MethodSource("otherRoutes")
    void otherDirectRoutesOnlyForFloatPluginGraphs(Route r) {
        SameDiff plain = SameDiff.create();
        assertFalse(r.applies().test(plain, DataType.FLOAT), "not a plug-in graph");
        HostOp.markPluginGraph(plain);
        assertFalse(r.applies().test(plain, DataType.DOUBLE), "oneDNN's routes are float only");
        assertEquals(DirectConv.available(), r.applies().test(plain, DataType.FLOAT));
        PluginHarness.withSystemProperty(r.property(), "false", () -> {
            assertFalse(r.applies().test(plain, DataType.FLOAT), "switched off");
            return null;
        });
        PluginHarness.withSystemProperty(DirectConv.PROPERTY, "false", () -> {
            assertFalse(r.applies().test(plain, DataType.FLOAT), "oneDNN not called directly at all");
            return null;
        });
    }

    @Test
    void autoTakesTheDirectRouteForPointwiseDilatedAndDepthwiseKernels() {
        PluginHarness.withSystemProperty(Conv.DENSE_PROPERTY, "auto", () -> {
            assertTrue(Conv.direct(Conv.Spec.of(1, 1, 0), 8));
            assertTrue(Conv.direct(Conv.Spec.of(1, 2, 0), 8));
            assertTrue(Conv.direct(Conv.Spec.of(3, 1, 2, 2, 1), 8));
            assertFalse(Conv.direct(Conv.Spec.of(3, 1, 1), 8), "undilated 3x3: libnd4j's convolution");
            assertTrue(Conv.direct(Conv.Spec.of(3, 1, 1, 1, 8), 8), "depthwise");
            assertFalse(Conv.direct(Conv.Spec.of(3, 1, 1, 1, 2), 8), "grouped, not depthwise");
            assertFalse(Conv.direct(Conv.Spec.of(1, 1, 0, 1, 2), 8), "grouped pointwise");
            Conv.dilatedStrategy(Conv.Dilated.TAPS);
            try {
                assertFalse(Conv.direct(Conv.Spec.of(3, 1, 2, 2, 1), 8), "a dilated route named explicitly");
            } finally {
                Conv.dilatedStrategy(Conv.Dilated.AUTO);
            }
            return null;
        });
    }
}
