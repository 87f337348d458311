package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;

class SqueezeExcitationTest {
    private static final Supplier<SqueezeExcitation> SE = () -> new SqueezeExcitation.Builder().reduction(4).build();
    private static final long[] SHAPE = {2, 8, 5, 3};

    static List<String> goldens() {
        return PluginHarness.goldenNames("SEBlock");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(SE, SHAPE);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(SE, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(SE, SHAPE);
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(SE, new long[]{3, 8, 6, 6});
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new SqueezeExcitation.Builder().reduction(0).build(),
                "SqueezeExcitation", "`reduction`", "strictly positive", "reduction=0");
        assertErrorMentions(() -> new SqueezeExcitation.Builder().nIn(8).reduction(16).build(),
                "SqueezeExcitation", "reduction must not exceed the number of channels", "8 channels");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new SqueezeExcitation.Builder().reduction(16).build(),
                new long[]{1, 8, 4, 4}, 1), "reduction must not exceed", "8 channels");
    }

    @Test
    void wrongChannelCountIsExplained() {
        var net = io.github.dl4jcnnplugins.torch.ReferenceRunner.network(
                new SqueezeExcitation.Builder().reduction(4).build(), List.of(new long[]{1, 8, 4, 4}),
                org.nd4j.linalg.api.buffer.DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 6, 4, 4)),
                "SqueezeExcitation 'plugin'", "expected input [N, 8, H, W]", "got [1, 6, 4, 4]");
    }
}
