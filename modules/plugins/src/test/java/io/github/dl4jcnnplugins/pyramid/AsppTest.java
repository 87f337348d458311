package io.github.dl4jcnnplugins.pyramid;

import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

class AsppTest {
    /** Rate 3 on a 5x4 input: some taps of the dilated kernel fall outside the image. */
    private static final Supplier<Aspp> ASPP = () -> new Aspp.Builder().nOut(3).rates(2, 3).build();
    private static final long[] SHAPE = {2, 3, 5, 4};

    static List<String> goldens() {
        return PluginHarness.goldenNames("ASPP");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * Kept small (every checked entry costs two forwards of the network); the golden cases already compare every
     * input and parameter gradient with PyTorch's autograd, for rates (6, 12, 18) and (2, 4).
     */
    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(() -> new Aspp.Builder().nOut(2).rates(2).build(), new long[]{2, 2, 5, 4});
    }

    /**
     * The same check with the dilated branches built every way (AUTO picks space-to-batch and im2col on oneDNN builds
     * only, and the test suite runs on the generic build; here, rate 2 on 5x4 reads 53% inside: taps).
     */
    @ParameterizedTest
    @EnumSource(value = Conv.Dilated.class, names = {"NATIVE", "SPACE_TO_BATCH", "IM2COL", "TAPS"})
    void gradientsCheckThroughEveryDilatedRoute(Conv.Dilated route) {
        Assumptions.assumeFalse(route == Conv.Dilated.NATIVE && Conv.oneDnnActive(),
                "the oneDNN builds of M2.1 have no dilated conv2d");
        Conv.Dilated before = Conv.dilatedStrategy();
        Conv.dilatedStrategy(route);
        try {
            PluginHarness.assertGradientsCheck(() -> new Aspp.Builder().nOut(2).rates(2).build(), new long[]{2, 2, 5, 4});
        } finally {
            Conv.dilatedStrategy(before);
        }
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(ASPP, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(ASPP, SHAPE);
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(() -> new Aspp.Builder().nOut(4).rates(2).build(), new long[]{3, 4, 6, 5});
    }

    @Test
    void ratesAreComparedByContentAndMayBeEmpty() {
        assertEquals(new Aspp.Builder().nOut(4).rates(2, 4).build(), new Aspp.Builder().nOut(4).rates(2, 4).build());
        assertNotEquals(new Aspp.Builder().nOut(4).rates(2, 4).build(), new Aspp.Builder().nOut(4).rates(4, 2).build());
        Aspp none = new Aspp.Builder().nIn(3).nOut(4).rates().build();
        assertEquals(List.of("conv.weight", "conv.bias", "atrous_block1.weight", "atrous_block1.bias",
                "conv_1x1_output.weight", "conv_1x1_output.bias"), none.paramSpecs().stream().map(s -> s.torchName()).toList());
        assertArrayEquals(new long[]{4, 8, 1, 1}, none.paramSpecs().get(4).shape());
        var net = ReferenceRunner.network(none, List.of(new long[]{1, 3, 1, 1}), DataType.DOUBLE);
        assertArrayEquals(new long[]{1, 4, 1, 1}, net.outputSingle(PluginHarness.randn(1, 1, 3, 1, 1)).shape());
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new Aspp.Builder().nOut(0).build(), "Aspp", "`nOut`", "strictly positive", "nOut=0");
        assertErrorMentions(() -> new Aspp.Builder().depth(8).rates(6, 12, 6).build(),
                "Aspp (nOut=8, rates=[6, 12, 6])", "`rates`", "distinct integers >= 2", "got rates=[6, 12, 6]");
        assertErrorMentions(() -> new Aspp.Builder().nOut(8).rates(1, 6).build(),
                "`rates`", "rate 1 is the 1x1 branch", "got rates=[1, 6]");
        assertErrorMentions(() -> new Aspp.Builder().nOut(8).rates((int[]) null).build(), "`rates`", "got null");
    }

    @Test
    void wrongChannelCountIsExplained() {
        var net = ReferenceRunner.network(ASPP.get(), List.of(new long[]{1, 3, 4, 4}), DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 5, 4, 4)),
                "Aspp 'plugin'", "expected input [N, 3, H, W]", "got [1, 5, 4, 4]");
    }
}
