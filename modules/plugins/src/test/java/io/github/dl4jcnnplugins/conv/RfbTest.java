package io.github.dl4jcnnplugins.conv;

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

class RfbTest {
    /** The smallest valid width (16: inter 2, branch 2 has 3 channels), stride 2 on odd anisotropic sizes, visual 2. */
    private static final Supplier<Rfb> RFB = () -> new Rfb.Builder().nOut(6).stride(2).scale(0.5).visual(2).build();
    private static final long[] SHAPE = {2, 16, 5, 4};

    static List<String> goldens() {
        return PluginHarness.goldenNames("RFB");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheckSampled(RFB, SHAPE, 12);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(RFB, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(RFB, SHAPE);
        PluginHarness.assertOutputTypeMatches(() -> new Rfb.Builder().nOut(4).build(), new long[]{1, 16, 3, 5});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(() -> new Rfb.Builder().nOut(8).build(), new long[]{3, 16, 5, 5});
    }

    @Test
    void batchNormBehavesLikePyTorch() throws Exception {
        PluginHarness.assertBatchNormSemantics(RFB, new long[]{3, 16, 5, 5});
    }

    @Test
    void parametersFollowTheStateDict() {
        Rfb r = new Rfb.Builder().nIn(32).nOut(64).build();
        var specs = r.paramSpecs();
        assertEquals(11 * 5, specs.size());
        assertEquals("branch0.0.conv.weight", specs.get(0).torchName());
        assertEquals("branch2.1.conv.weight", specs.get(30).torchName());
        assertEquals(List.of(6L, 4L, 3L, 3L), java.util.Arrays.stream(specs.get(30).shape()).boxed().toList());
        assertEquals("shortcut.bn.running_var", specs.get(54).torchName());
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new Rfb.Builder().nIn(8).nOut(8).build(),
                "Rfb", "needs at least 16 input channels", "got 8 channels");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new Rfb.Builder().nOut(8).build(), new long[]{1, 7, 4, 4}, 1),
                "Rfb", "needs at least 16 input channels", "in_planes / 8 = 0", "got 7 channels");
        assertErrorMentions(() -> new Rfb.Builder().nOut(0).build(), "Rfb", "`nOut`", "strictly positive", "nOut=0");
        assertErrorMentions(() -> new Rfb.Builder().nOut(8).visual(0).build(), "Rfb", "`visual`", "visual=0");
        assertErrorMentions(() -> new Rfb.Builder().nOut(8).stride(0).build(), "Rfb", "`stride`", "stride=0");
        assertErrorMentions(() -> new Rfb.Builder().nOut(8).scale(Double.NaN).build(), "Rfb", "`scale`", "finite");
        assertErrorMentions(() -> new Rfb.Builder().nOut(8).bnMomentum(-0.1).build(), "Rfb", "`bnMomentum`");
    }

    @Test
    void wrongChannelCountIsExplained() {
        var net = ReferenceRunner.network(new Rfb.Builder().nOut(8).build(), List.of(new long[]{1, 16, 4, 4}),
                DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 24, 4, 4)),
                "Rfb 'plugin'", "expected input [N, 16, H, W]", "got [1, 24, 4, 4]");
    }
}
