package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * oneDNN's batch normalization called directly ({@link DirectBatchNorm}) against the portable training BatchNorm
 * ({@link BatchMoments}, {@link BatchNormKernel}), both in float inside the plug-in runtime: every gradient of a small
 * network after one training step, the running statistics that step left, and the inference output with them. Runs
 * where an ND4J oneDNN build is loaded ({@code mvn -Ponednn test}; CI runs it so).
 */
class DirectBatchNormTest {
    @ParameterizedTest
    @ValueSource(doubles = {0.0, 3.0})
    void directEqualsPortable(double shift) {
        assumeTrue(DirectConv.available(), "no ND4J oneDNN build loaded");
        Map<String, INDArray> direct = run(shift, "true");
        Map<String, INDArray> portable = run(shift, "false");
        PluginHarness.assertAllClose(portable, direct, 1e-4);
    }

    /** Gradients, running statistics and inference output of the check network in float. */
    private static Map<String, INDArray> run(double shift, String direct) {
        return PluginHarness.withSystemProperty(DirectBatchNorm.PROPERTY, direct, () -> {
            long[] shape = {3, 5, 7, 6};
            ComputationGraph net = PluginHarness.checkNetwork(new BatchNormLayer(shift), shape, 42)
                    .convertDataType(DataType.FLOAT);
            Map<String, INDArray> out = new TreeMap<>(PluginHarness.outputAndGradients(net,
                    PluginHarness.randn(1, shape).castTo(DataType.FLOAT),
                    PluginHarness.randn(2, 3, 3).castTo(DataType.FLOAT)));
            net.getLayer("plugin").paramTable().forEach((k, v) -> out.put("param " + k, v.dup()));
            return out;
        });
    }
}
