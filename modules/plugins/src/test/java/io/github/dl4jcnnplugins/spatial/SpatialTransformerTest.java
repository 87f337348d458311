package io.github.dl4jcnnplugins.spatial;

import io.github.dl4jcnnplugins.ops.BilinearSampler;
import io.github.dl4jcnnplugins.ops.HostOp;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceModules;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SpatialTransformerTest {
    private static final Supplier<SpatialTransformer> STN = () -> new SpatialTransformer.Builder().outSize(5, 7).build();
    private static final long[] SHAPE = {2, 2, 19, 18};

    static List<String> goldens() {
        return PluginHarness.goldenNames("SpatialTransformer");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * The same parity for the composite sampler (SameDiff ops only): what runs where host ops cannot (CUDA, or
     * {@code -Ddl4jcnnplugins.hostOps=false}).
     */
    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorchWithTheCompositeSampler(String name) {
        PluginHarness.withSystemProperty(HostOp.PROPERTY, "false", () -> PluginHarness.assertGoldenParity(name));
    }

    /** Moves theta off the identity (where every sample sits on a pixel centre, a kink of bilinear sampling). */
    private static void perturb(Map<String, INDArray> p) {
        p.get(SpatialTransformer.FC2_WEIGHT).assign(PluginHarness.randn(11, 6, 32).muli(0.05));
        p.get(SpatialTransformer.FC2_BIAS).addi(Nd4j.createFromArray(0.1, -0.05, 0.03, 0.04, -0.1, -0.02));
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(STN, SHAPE, SpatialTransformerTest::perturb);
        PluginHarness.assertGradientsCheck(() -> new SpatialTransformer.Builder().alignCorners(true).outSize(4, 6).build(),
                new long[]{1, 1, 18, 20}, SpatialTransformerTest::perturb);
    }

    /**
     * The same check with the composite samplers (no host op): the separable form (the AUTO choice for these sizes)
     * and the gather form, whose image gradient on images this small is {@code SamplingAdjoint}'s batched product.
     */
    @Test
    void gradientsCheckThroughTheCompositeSamplers() {
        PluginHarness.withSystemProperty(HostOp.PROPERTY, "false", () -> {
            PluginHarness.assertGradientsCheck(STN, SHAPE, SpatialTransformerTest::perturb);
            return PluginHarness.withSystemProperty(BilinearSampler.SAMPLING_PROPERTY, "gather", () -> {
                PluginHarness.assertGradientsCheck(STN, SHAPE, SpatialTransformerTest::perturb);
                return null;
            });
        });
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(STN, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(STN, SHAPE);
        PluginHarness.assertOutputTypeMatches(() -> new SpatialTransformer.Builder().build(), new long[]{1, 3, 21, 18});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(STN, new long[]{3, 2, 18, 20});
    }

    /** A fresh layer is the identity transform: at the input's size it returns its input. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void identityAtInitReturnsInput(boolean alignCorners) {
        long[] shape = {2, 3, 19, 22};
        ComputationGraph net = ReferenceRunner.network(new SpatialTransformer.Builder().alignCorners(alignCorners).build(),
                List.of(shape), DataType.DOUBLE);
        INDArray x = PluginHarness.randn(8, shape);
        INDArray y = net.outputSingle(false, x);
        assertTrue(PluginHarness.relativeError(x, y) < 1e-12, "identity STN changed its input");
    }

    /**
     * The separable and the gather form of grid_sample agree in value and gradient (input and grid), in double, on
     * points inside, on the border, outside the image and exactly on pixel centres (the kink: both are one-sided).
     * At this size the gather form's image gradient is {@code SamplingAdjoint}'s product.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void separableAndGatherSamplersAgree(boolean alignCorners) {
        long n = 2, c = 3, h = 5, w = 7, oh = 4, ow = 6;
        INDArray x = PluginHarness.randn(21, n, c, h, w);
        INDArray grid = PluginHarness.randn(22, n, oh, ow, 2).muli(0.8);
        grid.putScalar(new long[]{0, 0, 0, 0}, 1.7).putScalar(new long[]{0, 0, 1, 1}, -1.3);         // outside
        grid.putScalar(new long[]{1, 2, 3, 0}, -1.0 + 2.0 * 3 / (w - 1)).putScalar(new long[]{1, 2, 3, 1}, 0.0); // centres
        grid.putScalar(new long[]{1, 3, 5, 0}, 1.0).putScalar(new long[]{1, 3, 5, 1}, -1.0);          // corner
        INDArray up = PluginHarness.randn(23, n, c, oh, ow);
        Map<String, INDArray> a = samplerGradients(x, grid, up, alignCorners, BilinearSampler.Sampling.SEPARABLE);
        Map<String, INDArray> b = samplerGradients(x, grid, up, alignCorners, BilinearSampler.Sampling.GATHER);
        for (String k : List.of("out", "x", "grid")) {
            assertTrue(PluginHarness.relativeError(b.get(k), a.get(k)) < 1e-12, k + ": " + PluginHarness.relativeError(b.get(k), a.get(k)));
        }
    }

    /**
     * The same agreement on an image large enough that the gather form takes its image gradient from the
     * scatter-add instead of {@code SamplingAdjoint} ({@code C H W P} above its limit).
     */
    @Test
    void separableAndScatterGatherSamplersAgreeOnALargerImage() {
        long n = 1, c = 1, h = 128, w = 128, oh = 128, ow = 128;
        INDArray x = PluginHarness.randn(31, n, c, h, w);
        INDArray grid = PluginHarness.randn(32, n, oh, ow, 2).muli(0.6);
        INDArray up = PluginHarness.randn(33, n, c, oh, ow);
        Map<String, INDArray> a = samplerGradients(x, grid, up, false, BilinearSampler.Sampling.SEPARABLE);
        Map<String, INDArray> b = samplerGradients(x, grid, up, false, BilinearSampler.Sampling.GATHER);
        for (String k : List.of("out", "x", "grid")) {
            assertTrue(PluginHarness.relativeError(b.get(k), a.get(k)) < 1e-12, k + ": " + PluginHarness.relativeError(b.get(k), a.get(k)));
        }
    }

    private static Map<String, INDArray> samplerGradients(INDArray x, INDArray grid, INDArray up, boolean alignCorners,
                                                          BilinearSampler.Sampling sampling) {
        long[] s = x.shape();
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.var("x", x.dup());
        SDVariable g = sd.var("grid", grid.dup());
        SDVariable out = BilinearSampler.gridSample(sd, in, s[1], s[2], s[3], g, up.size(2), up.size(3), alignCorners, sampling);
        SDVariable loss = out.mul(sd.constant(up)).sum();
        loss.markAsLoss();
        Map<String, INDArray> grads = sd.calculateGradients(Map.of(), "x", "grid");
        return Map.of("out", out.eval(), "x", grads.get("x"), "grid", grads.get("grid"));
    }

    /** The functional sampler on its own: a horizontal flip is exact, a shift by the full width leaves zeros. */
    @Test
    void functionalSamplerFlipsAndPadsWithZeros() {
        long n = 2, c = 3, h = 5, w = 6;
        INDArray x = PluginHarness.randn(9, n, c, h, w);
        INDArray flip = Nd4j.createFromArray(new double[][][]{{{-1, 0, 0}, {0, 1, 0}}, {{1, 0, 2}, {0, 1, 0}}});
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("x", DataType.DOUBLE, -1, c, h, w);
        SDVariable theta = sd.placeHolder("theta", DataType.DOUBLE, -1, 2, 3);
        SDVariable grid = BilinearSampler.affineGrid(sd, theta, h, w, false);
        SDVariable out = BilinearSampler.gridSample(sd, in, c, h, w, grid, h, w, false);
        INDArray y = out.eval(Map.of("x", x, "theta", flip));
        INDArray flipped = Nd4j.zeros(DataType.DOUBLE, c, h, w);
        for (int j = 0; j < w; j++) {
            flipped.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(j))
                    .assign(x.get(NDArrayIndex.point(0), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(w - 1 - j)));
        }
        assertTrue(PluginHarness.relativeError(flipped, y.get(NDArrayIndex.point(0))) < 1e-12, "flip");
        assertEquals(0.0, y.get(NDArrayIndex.point(1)).amaxNumber().doubleValue(), 0.0, "shifted out of the image");
    }

    @Test
    void referenceOutSizeAcceptsIntOrPair() throws Exception {
        ObjectMapper m = new ObjectMapper();
        SpatialTransformer a = (SpatialTransformer) ReferenceModules.create("SpatialTransformer",
                m.readTree("{\"in_channels\": 2, \"height\": 20, \"width\": 24, \"out_size\": 12}"));
        assertEquals(12, a.getOutHeight());
        assertEquals(12, a.getOutWidth());
        SpatialTransformer b = (SpatialTransformer) ReferenceModules.create("SpatialTransformer",
                m.readTree("{\"in_channels\": 2, \"height\": 20, \"width\": 24, \"out_size\": [8, 9], \"align_corners\": true}"));
        assertEquals(8, b.getOutHeight());
        assertEquals(9, b.getOutWidth());
        assertTrue(b.isAlignCorners());
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new SpatialTransformer.Builder().outSize(0).build(),
                "SpatialTransformer", "`outHeight`", "outHeight=0");
        assertErrorMentions(() -> new SpatialTransformer.Builder().outSize(4, -1).build(),
                "SpatialTransformer", "`outWidth`", "outWidth=-1");
        assertErrorMentions(() -> new SpatialTransformer.Builder().inputSize(17, 30).build(),
                "SpatialTransformer", "input 17x30 is too small for the localisation net", "at least 18");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new SpatialTransformer.Builder().build(), new long[]{1, 2, 18, 16}, 1),
                "SpatialTransformer", "input 18x16 is too small");
        ComputationGraph net = ReferenceRunner.network(new SpatialTransformer.Builder().build(), List.of(new long[]{1, 1, 20, 20}),
                DataType.DOUBLE);
        assertErrorMentions(() -> net.outputSingle(false, PluginHarness.randn(1, 1, 1, 22, 20)),
                "SpatialTransformer", "expected spatial size 20x20", "got 22x20");
    }
}
