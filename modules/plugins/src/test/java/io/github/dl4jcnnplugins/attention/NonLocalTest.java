package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.ops.MatMul;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

class NonLocalTest {
    /** Sub-sampled with odd H and W (the last row and column never become keys). */
    private static final Supplier<NonLocal> EMBEDDED_SUB = () -> new NonLocal.Builder().interChannels(3).subSample(true).build();
    private static final Supplier<NonLocal> GAUSSIAN_SUB = () -> new NonLocal.Builder().mode(NonLocal.Mode.GAUSSIAN).subSample(true).build();
    private static final long[] SHAPE = {2, 4, 5, 3};

    static List<String> goldens() {
        return PluginHarness.goldenNames("NonLocal");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * One small configuration only (every check costs two forwards of the network); the golden cases already
     * compare every mode's input and parameter gradients with PyTorch's autograd.
     */
    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(() -> new NonLocal.Builder().interChannels(2).subSample(true).build(),
                new long[]{2, 3, 3, 5});
    }

    /**
     * Every golden case and the gradient check through each way of running the attention's batched products (the
     * generic test build's AUTO is NATIVE; PER_ITEM runs one rank-2 product per image, as AUTO does on oneDNN builds).
     */
    @ParameterizedTest
    @EnumSource(MatMul.Batched.class)
    void batchedProductStrategiesAgree(MatMul.Batched strategy) {
        MatMul.Batched before = MatMul.batchedStrategy();
        MatMul.batchedStrategy(strategy);
        try {
            for (String name : goldens()) {
                PluginHarness.assertGoldenParity(name);
            }
            gradientsCheck();
        } finally {
            MatMul.batchedStrategy(before);
        }
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(EMBEDDED_SUB, SHAPE);
        PluginHarness.assertRoundTrips(GAUSSIAN_SUB, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(EMBEDDED_SUB, SHAPE);
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(EMBEDDED_SUB, new long[]{2, 4, 4, 3});
    }

    @Test
    void zeroOutputProjectionIsIdentity() {
        ComputationGraph net = ReferenceRunner.network(EMBEDDED_SUB.get(), List.of(new long[]{2, 4, 5, 3}), DataType.DOUBLE);
        net.getVertex(ReferenceRunner.VERTEX).paramTable(false).get(NonLocal.MASK_WEIGHT).assign(0);
        INDArray x = PluginHarness.randn(9, 2, 4, 5, 3);
        assertEquals(x, net.outputSingle(false, x));
    }

    @Test
    void gaussianModeHasNoEmbeddings() {
        NonLocal nl = new NonLocal.Builder().nIn(8).mode("gaussian").build();
        assertEquals(List.of("conv_g.weight", "conv_mask.weight"), nl.paramSpecs().stream().map(s -> s.torchName()).toList());
        assertFalse(nl.paramSpecMap().containsKey(NonLocal.THETA_WEIGHT));
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new NonLocal.Builder().mode("embedded"),
                "NonLocal", "`mode`", "expected one of embedded_gaussian, dot_product, gaussian", "got mode='embedded'");
        assertErrorMentions(() -> new NonLocal.Builder().mode((NonLocal.Mode) null).build(), "`mode`", "got null");
        assertErrorMentions(() -> new NonLocal.Builder().interChannels(0).build(),
                "NonLocal", "`interChannels`", "strictly positive", "interChannels=0");
        assertErrorMentions(() -> new NonLocal.Builder().nIn(1).build(),
                "default interChannels = channels / 2 is 0 for 1 channel");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new NonLocal.Builder().subSample(true).build(),
                new long[]{1, 4, 1, 6}, 1), "NonLocal", "sub-sampling on a 1-pixel-high input", "got 1x6");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new NonLocal.Builder().subSample(true).build(),
                new long[]{1, 4, 6, 1}, 1), "sub-sampling on a 1-pixel-wide input", "got 6x1");
    }

    @Test
    void wrongInputIsExplained() {
        var net = ReferenceRunner.network(EMBEDDED_SUB.get(), List.of(new long[]{1, 4, 4, 4}), DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 6, 4, 4)),
                "NonLocal 'plugin'", "expected input [N, 4, H, W]", "got [1, 6, 4, 4]");
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 4, 1, 4)), "sub-sampling on a 1-pixel-high input");
    }
}
