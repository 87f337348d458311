package io.github.dl4jcnnplugins.base;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.File;
import java.nio.file.Files;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The multi-input base: channel inference, gradients (2x fix), round trips, errors. */
class PluginVertexTest {
    static ComputationGraph net(long c) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).updater(new NoOp()).seed(3).graphBuilder()
                .addInputs("in").setInputTypes(InputType.convolutional(4, 3, 2))
                .addLayer("c0", new ConvolutionLayer.Builder(1, 1).nOut(c).activation(Activation.TANH).build(), "in")
                .addLayer("c1", new ConvolutionLayer.Builder(1, 1).nOut(c).activation(Activation.SIGMOID).build(), "in")
                .addVertex("sum", new ScaledSumVertex(), "c0", "c1")
                .addLayer("out", new OutputLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY)
                        .nOut(2).build(), "sum")
                .setOutputs("out").build();
        ComputationGraph n = new ComputationGraph(conf);
        n.init();
        return n;
    }

    @Test
    void gradientsCheckThroughAllInputs() {
        ComputationGraph n = net(3);
        assertTrue(n.getVertex("sum") instanceof PluginVertexImpl);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(n)
                .inputs(new INDArray[]{PluginHarness.randn(1, 2, 2, 4, 3)}).labels(new INDArray[]{PluginHarness.randn(2, 2, 2)})
                .epsilon(1e-6).maxRelError(1e-5).minAbsoluteError(1e-9).print(GradientCheckUtil.PrintMode.FAILURES_ONLY));
        assertTrue(ok);
    }

    @Test
    void roundTrips() throws Exception {
        ComputationGraph n = net(3);
        INDArray x = PluginHarness.randn(3, 2, 2, 4, 3);
        INDArray y = n.outputSingle(x);
        ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(n.getConfiguration().toJson());
        assertEquals(n.getConfiguration(), back);
        File f = Files.createTempFile("vertex", ".zip").toFile();
        ModelSerializer.writeModel(n, f, true);
        ComputationGraph r = ModelSerializer.restoreComputationGraph(f, true);
        assertEquals(y, r.outputSingle(x));
        assertTrue(f.delete());
    }

    @Test
    void wrongInputsAreExplained() {
        assertErrorMentions(() -> new NeuralNetConfiguration.Builder().graphBuilder()
                        .addInputs("a", "b").setInputTypes(InputType.convolutional(4, 4, 2), InputType.convolutional(4, 4, 3))
                        .addVertex("sum", new ScaledSumVertex(), "a", "b").setOutputs("sum").build(),
                "ScaledSumVertex", "inputs must have the same shape");
        assertErrorMentions(() -> new NeuralNetConfiguration.Builder().graphBuilder()
                        .addInputs("a").setInputTypes(InputType.convolutional(4, 4, 2))
                        .addVertex("sum", new ScaledSumVertex(), "a").setOutputs("sum").build(),
                "ScaledSumVertex", "expected 2 inputs; got 1");
    }
}
