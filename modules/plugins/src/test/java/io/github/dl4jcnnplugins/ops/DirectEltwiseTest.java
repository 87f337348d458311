package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * oneDNN's element-wise ReLU and SiLU called directly ({@link DirectEltwise}) against the portable forms ({@link Relu},
 * {@code x * sigmoid(x)}), both in float inside the plug-in runtime: output and every gradient of a small network,
 * with inputs scaled up to about +-100 (where libnd4j's fused swish derivative turns into NaN). Runs where an ND4J
 * oneDNN build is loaded ({@code mvn -Ponednn test}; CI runs it so).
 */
class DirectEltwiseTest {
    @ParameterizedTest
    @CsvSource({"RELU, 1", "SWISH, 1", "SWISH, 50"})
    void directEqualsPortable(Activation activation, double scale) {
        assumeTrue(DirectConv.available(), "no ND4J oneDNN build loaded");
        Map<String, INDArray> direct = run(activation, scale, "true");
        Map<String, INDArray> portable = run(activation, scale, "false");
        PluginHarness.assertAllClose(portable, direct, 1e-5);
    }

    private static Map<String, INDArray> run(Activation activation, double scale, String direct) {
        return PluginHarness.withSystemProperty(DirectEltwise.PROPERTY, direct, () -> {
            long[] shape = {2, 4, 5, 6};
            ComputationGraph net = PluginHarness.checkNetwork(new ActivationLayer(activation, scale), shape, 42)
                    .convertDataType(DataType.FLOAT);
            return PluginHarness.outputAndGradients(net, PluginHarness.randn(1, shape).mul(2).castTo(DataType.FLOAT),
                    PluginHarness.randn(2, 2, 3).castTo(DataType.FLOAT));
        });
    }
}
