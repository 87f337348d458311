package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training BatchNorm (+ ReLU) host kernels ({@link BatchNormRelu}, float) against the portable BatchNorm in double
 * ({@link BatchMoments}, {@link BatchNormKernel}, {@link Relu}), inside the plug-in runtime: every gradient of a small
 * network after one training step, the running statistics that step left, and the inference output with them. The
 * shapes take both schedules (a task per channel; channels split in parts whose statistics are combined), planes cut
 * into several blocks, channels kept between the backward's passes and channels too large for that; gamma and beta
 * are random (a negative gamma turns the ReLU's mask around).
 */
class BatchNormReluTest {
    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(new long[]{3, 5, 7, 6}, Activation.RELU, 0.0, 2e-5),      // 5 channels: split in parts
                Arguments.of(new long[]{3, 5, 7, 6}, Activation.IDENTITY, 3.0, 2e-5),
                Arguments.of(new long[]{2, 12, 5, 4}, Activation.RELU, 3.0, 2e-5),     // a task per channel
                Arguments.of(new long[]{2, 12, 5, 4}, Activation.IDENTITY, 0.0, 2e-5),
                Arguments.of(new long[]{2, 3, 50, 45}, Activation.RELU, 0.0, 2e-5),    // 2250 pixels: 2 blocks a plane
                Arguments.of(new long[]{20, 3, 8, 8}, Activation.RELU, 3.0, 2e-5),     // 20 blocks a channel: flushes
                // channels too large to keep; float sums over 68,400 values per channel in the layers around it
                Arguments.of(new long[]{2, 8, 180, 190}, Activation.RELU, 0.0, 1e-4),
                Arguments.of(new long[]{1, 9, 47, 45}, Activation.TANH, 0.0, 2e-5));  // another activation after it
    }

    @ParameterizedTest
    @MethodSource("cases")
    void hostKernelsEqualThePortableFormInDouble(long[] shape, Activation activation, double shift, double tolerance) {
        Map<String, INDArray> host = run(shape, activation, shift, DataType.FLOAT, "true");
        Map<String, INDArray> portable = run(shape, activation, shift, DataType.DOUBLE, "false");
        PluginHarness.assertAllClose(portable, host, tolerance);
    }

    /** Float plug-in graphs on the CPU backend only, unless switched off. */
    @Test
    void onlyForFloatPluginGraphs() {
        SameDiff plain = SameDiff.create();
        assertFalse(BatchNormRelu.applies(plain, DataType.FLOAT), "not a plug-in graph");
        HostOp.markPluginGraph(plain);
        assertFalse(BatchNormRelu.applies(plain, DataType.DOUBLE), "float only");
        assertTrue(BatchNormRelu.applies(plain, DataType.FLOAT));
        PluginHarness.withSystemProperty(BatchNormRelu.PROPERTY, "false", () -> {
            assertFalse(BatchNormRelu.applies(plain, DataType.FLOAT), "switched off");
            return null;
        });
    }

    private static Map<String, INDArray> run(long[] shape, Activation activation, double shift, DataType dt,
                                             String host) {
        return PluginHarness.withSystemProperty(BatchNormRelu.PROPERTY, host, () -> {
            ComputationGraph net = network(shape, activation, shift, dt);
            Map<String, INDArray> out = new TreeMap<>(PluginHarness.outputAndGradients(net, input(shape, dt),
                    labels(shape[0], dt)));
            net.getLayer("plugin").paramTable().forEach((k, v) -> out.put("param " + k, v.dup()));
            return out;
        });
    }

    private static ComputationGraph network(long[] shape, Activation activation, double shift, DataType dt) {
        ComputationGraph net = PluginHarness.checkNetwork(new BatchNormLayer(shift, activation), shape, 42);
        Nd4j.getRandom().setSeed(7);
        net.getLayer("plugin").paramTable().forEach((k, v) -> {
            if (k.endsWith("weight")) {
                v.assign(Nd4j.randn(DataType.DOUBLE, v.shape()));
            } else if (k.endsWith("bias")) {
                v.assign(Nd4j.randn(DataType.DOUBLE, v.shape()).mul(0.5));
            }
        });
        return dt == DataType.DOUBLE ? net : net.convertDataType(dt);
    }

    private static INDArray input(long[] shape, DataType dt) {
        return PluginHarness.randn(1, shape).castTo(dt);
    }

    private static INDArray labels(long n, DataType dt) {
        return PluginHarness.randn(2, n, 3).castTo(dt);
    }
}
