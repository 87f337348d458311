package io.github.dl4jcnnplugins.pool;

import io.github.dl4jcnnplugins.ops.Pad;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;

class BlurPoolTest {
    private static final long[] SHAPE = {2, 3, 7, 6};

    static List<String> goldens() {
        return PluginHarness.goldenNames("BlurPool");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /** Every pad type, with the reflection / replication gradients built from slices. */
    @ParameterizedTest
    @ValueSource(strings = {"reflect", "replicate", "zero"})
    void gradientsCheck(String padType) {
        PluginHarness.assertGradientsCheck(() -> new BlurPool.Builder().padType(padType).filterSize(3).stride(2)
                .padOff(1).build(), SHAPE);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(() -> new BlurPool.Builder().padType(Pad.Mode.REPLICATE).filterSize(5).build(), SHAPE);
    }

    /** Filter sizes 1 to 7 with any stride: declared output type equals the real output. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7})
    void declaredOutputTypeIsReal(int filterSize) {
        Supplier<BlurPool> b = () -> new BlurPool.Builder().filterSize(filterSize).stride(filterSize % 3 + 1).build();
        PluginHarness.assertOutputTypeMatches(b, new long[]{1, 2, 9, 8});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(() -> new BlurPool.Builder().build(), new long[]{3, 2, 8, 8});
    }

    @Test
    void filterOneWithoutOffsetIsPlainSubsampling() {
        var net = ReferenceRunner.network(new BlurPool.Builder().filterSize(1).stride(3).build(), List.of(SHAPE), DataType.DOUBLE);
        INDArray x = PluginHarness.randn(3, SHAPE);
        INDArray y = net.outputSingle(x);
        assertEquals(x.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 3, 7), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 3, 6)), y);
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new BlurPool.Builder().filterSize(8).build(), "BlurPool", "`filterSize`", "1 to 7", "filterSize=8");
        assertErrorMentions(() -> new BlurPool.Builder().padType("mirror").build(), "BlurPool", "`padType`", "mirror",
                "reflect", "replicate", "zero");
        assertErrorMentions(() -> new BlurPool.Builder().stride(0).build(), "BlurPool", "`stride`", "stride=0");
        assertErrorMentions(() -> new BlurPool.Builder().padOff(-1).build(), "BlurPool", "`padOff`", "padOff=-1");
        assertErrorMentions(() -> ReferenceRunner.network(new BlurPool.Builder().filterSize(7).build(),
                List.of(new long[]{1, 2, 3, 9}), DataType.DOUBLE), "BlurPool", "reflection padding by 3", "got 3x9");
    }

    @Test
    void tooSmallInputAtRunTimeIsExplained() {
        var net = ReferenceRunner.network(new BlurPool.Builder().filterSize(5).build(), List.of(SHAPE), DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 3, 2, 2)),
                "BlurPool 'plugin'", "reflection padding by 2", "got 2x2");
    }
}
