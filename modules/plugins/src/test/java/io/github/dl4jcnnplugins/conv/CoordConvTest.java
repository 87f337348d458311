package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;

class CoordConvTest {
    private static final Supplier<CoordConv> COORD = () -> new CoordConv.Builder().nOut(3).kernelSize(3).stride(2)
            .padding(1).withR(true).build();
    private static final long[] SHAPE = {2, 2, 5, 4};

    static List<String> goldens() {
        return PluginHarness.goldenNames("CoordConv");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(COORD, SHAPE);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(COORD, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(COORD, new long[]{1, 3, 7, 6});
        PluginHarness.assertOutputTypeMatches(() -> new CoordConv.Builder().nOut(2).kernelSize(1).padding(0).build(),
                new long[]{1, 3, 1, 1});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(COORD, new long[]{3, 2, 6, 6});
    }

    @Test
    void coordinateChannelsFollowLinspace() {
        INDArray c = CoordConv.coordinateChannels(1, 3, true, DataType.DOUBLE);
        assertEquals(-1.0, c.getDouble(0, 0, 0, 0));   // linspace(-1, 1, 1) = [-1]
        assertEquals(0.0, c.getDouble(0, 0, 0, 1));
        assertEquals(1.0, c.getDouble(0, 0, 0, 2));
        assertEquals(Math.sqrt(2), c.getDouble(0, 2, 0, 2), 1e-15);
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new CoordConv.Builder().nOut(0).build(), "CoordConv", "`nOut`", "nOut=0");
        assertErrorMentions(() -> new CoordConv.Builder().nOut(4).stride(0).build(), "CoordConv", "`stride`", "stride=0");
        assertErrorMentions(() -> new CoordConv.Builder().nOut(4).padding(-1).build(), "CoordConv", "`padding`", "padding=-1");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new CoordConv.Builder().nOut(4).kernelSize(5).padding(0).build(),
                new long[]{1, 2, 3, 3}, 1), "CoordConv", "input 3x3 is too small", "output would be -1x-1");
    }
}
