package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;

class CbamTest {
    private static final Supplier<Cbam> CBAM = () -> new Cbam.Builder().reduction(2).spatialKernel(3).build();
    private static final long[] SHAPE = {2, 4, 5, 3};

    static List<String> goldens() {
        return PluginHarness.goldenNames("CBAM");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(CBAM, SHAPE);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(CBAM, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(() -> new Cbam.Builder().reduction(4).build(), new long[]{1, 8, 9, 7});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(CBAM, new long[]{3, 4, 6, 6});
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new Cbam.Builder().spatialKernel(4).build(),
                "Cbam", "`spatialKernel`", "odd", "spatialKernel=4");
        assertErrorMentions(() -> new Cbam.Builder().reduction(-1).build(), "Cbam", "`reduction`", "reduction=-1");
        assertErrorMentions(() -> new Cbam.Builder().nIn(4).reduction(8).build(),
                "Cbam", "reduction must not exceed the number of channels", "4 channels");
    }

    @Test
    void wrongChannelCountIsExplained() {
        var net = io.github.dl4jcnnplugins.torch.ReferenceRunner.network(CBAM.get(), List.of(SHAPE),
                org.nd4j.linalg.api.buffer.DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 2, 5, 5, 3)),
                "Cbam 'plugin'", "expected input [N, 4, H, W]", "got [2, 5, 5, 3]");
    }
}
