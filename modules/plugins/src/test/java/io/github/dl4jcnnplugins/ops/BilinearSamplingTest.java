package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The host-op sampler ({@link BilinearSampling}) against the composite form it replaces in plug-in graphs on the CPU
 * backend (outputs, the gradients of coordinates, scale and image, in double), and through DL4J's gradient check:
 * points inside, on the border and outside the image, with and without scale, one and two groups, one image (the
 * channels then split between threads) and several; each with the image held planar and channels last.
 */
class BilinearSamplingTest {
    record Case(int groups, boolean scaled, long n, BilinearSampling.ImageLayout layout) {
        @Override
        public String toString() {
            return "groups " + groups + (scaled ? ", scaled" : "") + ", N " + n + ", " + layout;
        }
    }

    /** Each geometry with the image held planar and channels last (AUTO picks by the channel count). */
    static List<Case> cases() {
        List<Case> cases = new java.util.ArrayList<>();
        for (BilinearSampling.ImageLayout layout : List.of(BilinearSampling.ImageLayout.PLANAR,
                BilinearSampling.ImageLayout.CHANNELS_LAST)) {
            cases.addAll(List.of(new Case(1, false, 3, layout), new Case(2, true, 2, layout),
                    new Case(1, true, 1, layout), new Case(2, false, 1, layout)));
        }
        return cases;
    }

    /** Runs {@code action} with the sampler's image layout set to the case's. */
    private static <T> T withLayout(Case c, java.util.function.Supplier<T> action) {
        BilinearSampling.LAYOUT.set(c.layout());
        try {
            return action.get();
        } finally {
            BilinearSampling.LAYOUT.set(BilinearSampling.ImageLayout.AUTO);
        }
    }

    private static final long C = 4, H = 5, W = 6, P = 14;

    /**
     * Positions with fractional parts in [0.15, 0.85] (away from the kinks of bilinear sampling at integers, which a
     * finite-difference check cannot take), spread over [-2, H + 1] x [-2, W + 1]: inside, across the border and
     * outside.
     */
    private static void positions(Map<String, INDArray> p) {
        for (String k : List.of("py", "px")) {
            INDArray v = p.get(k);
            long size = k.equals("py") ? H : W;
            for (long i = 0; i < v.length(); i++) {
                long cell = (i * 7 + (k.equals("py") ? 3 : 5)) % (size + 3) - 2;
                v.putScalar(i, cell + 0.15 + 0.7 * ((i * 0.37) % 1.0));
            }
        }
        if (p.containsKey("scale")) {
            p.get("scale").assign(PluginHarness.randn(5, p.get("scale").shape()));
        }
    }

    private static SamplerLayer layer(Case c) {
        return new SamplerLayer(c.groups(), P, c.scaled(), H, W);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void hostOpMatchesTheCompositeForm(Case c) {
        Map<String, INDArray> host = withLayout(c, () -> run(c, "true"));
        Map<String, INDArray> composite = run(c, "false");
        PluginHarness.assertAllClose(composite, host, 1e-12);
    }

    /** Output and every gradient of the check network with host ops on or off. */
    private static Map<String, INDArray> run(Case c, String hostOps) {
        return PluginHarness.withSystemProperty(HostOp.PROPERTY, hostOps, () -> {
            long[] shape = {c.n(), C, H, W};
            ComputationGraph net = PluginHarness.checkNetwork(layer(c), shape, 42);
            positions(net.getLayer("plugin").paramTable());
            return PluginHarness.outputAndGradients(net, PluginHarness.randn(1, shape), PluginHarness.randn(2, c.n(), 3));
        });
    }

    @ParameterizedTest
    @MethodSource("cases")
    void gradientsCheck(Case c) {
        withLayout(c, () -> PluginHarness.withSystemProperty(HostOp.PROPERTY, "true", () -> {
            PluginHarness.assertGradientsCheck(() -> layer(c), new long[]{c.n(), C, H, W},
                    BilinearSamplingTest::positions);
            return null;
        }));
    }

    /** Float inputs run the same kernel (reading and writing float): agrees with the double result to float precision. */
    @ParameterizedTest
    @MethodSource("cases")
    void floatAgreesWithDouble(Case c) {
        withLayout(c, () -> PluginHarness.withSystemProperty(HostOp.PROPERTY, "true", () -> {
            long[] shape = {c.n(), C, H, W};
            ComputationGraph net = PluginHarness.checkNetwork(layer(c), shape, 42);
            positions(net.getLayer("plugin").paramTable());
            INDArray x = PluginHarness.randn(1, shape);
            INDArray expected = net.feedForward(x, false).get("plugin");
            ComputationGraph f = net.convertDataType(DataType.FLOAT);
            INDArray actual = f.feedForward(x.castTo(DataType.FLOAT), false).get("plugin");
            double err = PluginHarness.relativeError(expected, actual.castTo(expected.dataType()));
            assertTrue(err < 1e-6, "float vs double: " + err);
            return null;
        }));
    }
}
