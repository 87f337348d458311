package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.ops.HostOp;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;

class GhostModuleTest {
    /** ratio 3 (depthwise multiplier 2), 2 + 4 channels cut to 5, odd and anisotropic sizes, stride 2. */
    private static final Supplier<GhostModule> GHOST = () -> new GhostModule.Builder()
            .nOut(5).kernelSize(3).ratio(3).dwSize(3).stride(2).build();
    private static final long[] SHAPE = {2, 3, 5, 4};

    static List<String> goldens() {
        return PluginHarness.goldenNames("GhostModule");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * The BatchNorm gradient's per-channel arithmetic as SameDiff ops instead of host ops ({@code BatchNormGrads}):
     * what runs where host ops cannot (CUDA, or {@code -Ddl4jcnnplugins.hostOps=false}).
     */
    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorchWithoutHostOps(String name) {
        PluginHarness.withSystemProperty(HostOp.PROPERTY, "false", () -> PluginHarness.assertGoldenParity(name));
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(GHOST, SHAPE);
    }

    @Test
    void gradientsCheckWithoutHostOps() {
        PluginHarness.withSystemProperty(HostOp.PROPERTY, "false", () -> {
            PluginHarness.assertGradientsCheck(GHOST, SHAPE);
            return null;
        });
    }

    @Test
    void gradientsCheckWithoutReluMinibatchOne() {
        PluginHarness.assertGradientsCheck(() -> new GhostModule.Builder().nOut(4).relu(false).build(),
                new long[]{1, 3, 3, 3});
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(GHOST, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(GHOST, SHAPE);
        PluginHarness.assertOutputTypeMatches(() -> new GhostModule.Builder().nOut(6).kernelSize(2).build(),
                new long[]{2, 4, 5, 5});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(GHOST, new long[]{3, 3, 6, 6});
    }

    @Test
    void batchNormBehavesLikePyTorch() throws Exception {
        PluginHarness.assertBatchNormSemantics(GHOST, new long[]{4, 3, 5, 5});
    }

    @Test
    void channelCounts() {
        GhostModule g = new GhostModule.Builder().nIn(16).nOut(20).ratio(3).build();
        assertEquals(7, g.initChannels());
        assertEquals(14, g.cheapChannels());
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new GhostModule.Builder().nOut(8).ratio(1).build(),
                "GhostModule", "`ratio`", "expected a value >= 2", "ratio=1");
        assertErrorMentions(() -> new GhostModule.Builder().nOut(0).build(),
                "GhostModule", "`nOut`", "strictly positive", "nOut=0");
        assertErrorMentions(() -> new GhostModule.Builder().nOut(8).dwSize(2).build(),
                "GhostModule", "`dwSize`", "odd", "dwSize=2");
        assertErrorMentions(() -> new GhostModule.Builder().nOut(8).stride(0).build(),
                "GhostModule", "`stride`", "stride=0");
        assertErrorMentions(() -> new GhostModule.Builder().nOut(8).bnMomentum(1.5).build(),
                "GhostModule", "`bnMomentum`", "bnMomentum=1.5");
        assertErrorMentions(() -> new GhostModule.Builder().nOut(8).bnEps(0).build(),
                "GhostModule", "`bnEps`", "bnEps=0.0");
    }

    @Test
    void wrongChannelCountIsExplained() {
        var net = ReferenceRunner.network(new GhostModule.Builder().nOut(8).build(), List.of(new long[]{1, 4, 4, 4}),
                DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 6, 4, 4)),
                "GhostModule 'plugin'", "expected input [N, 4, H, W]", "got [1, 6, 4, 4]");
    }
}
