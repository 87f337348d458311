package io.github.dl4jcnnplugins.base;

import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.CnnLossLayer;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.activations.impl.ActivationLReLU;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native helpers compute what DL4J's built-in convolution and BatchNormalization paths compute. */
class NativeHelpersTest {

    private static ComputationGraph graph(DataType type) {
        ComputationGraph g = new ComputationGraph(new NeuralNetConfiguration.Builder().seed(7).dataType(type)
                .updater(new Sgd(0.05)).convolutionMode(ConvolutionMode.Same).graphBuilder()
                .addInputs("in").setInputTypes(InputType.convolutional(12, 12, 3))
                .addLayer("c1", new ConvolutionLayer.Builder(3, 3).stride(2, 2).nOut(6).hasBias(false)
                        .activation(Activation.IDENTITY).build(), "in")
                .addLayer("bn1", new BatchNormalization.Builder().build(), "c1")
                .addLayer("act1", new ActivationLayer.Builder().activation(new ActivationLReLU(0.1)).build(), "bn1")
                .addLayer("c2", new ConvolutionLayer.Builder(3, 3).nOut(5).activation(Activation.TANH).build(), "act1")
                .addLayer("c3", new ConvolutionLayer.Builder(1, 1).nOut(2).activation(Activation.IDENTITY).build(), "c2")
                .addLayer("out", new CnnLossLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY).build(), "c3")
                .setOutputs("out").build());
        g.init();
        return g;
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
        double err = expected.sub(actual).amaxNumber().doubleValue() / scale;
        assertTrue(err < tol, what + ": max relative difference " + err);
    }

    @Test
    void nativeHelpersMatchBuiltInPathInFloat() {
        ComputationGraph builtIn = graph(DataType.FLOAT);
        ComputationGraph fast = graph(DataType.FLOAT);
        fast.setParams(builtIn.params().dup());
        assertEquals(4, NativeHelpers.install(fast), "three convolutions and one BatchNormalization");

        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.rand(DataType.FLOAT, 4, 3, 12, 12);
        INDArray y = Nd4j.rand(DataType.FLOAT, 4, 2, 6, 6);
        for (boolean train : new boolean[]{false, true}) {
            assertClose(builtIn.output(train, x)[0], fast.output(train, x)[0], 1e-5, "output, train=" + train);
        }
        org.nd4j.linalg.dataset.DataSet ds = new org.nd4j.linalg.dataset.DataSet(x, y);
        builtIn.setInputs(x);
        builtIn.setLabels(y);
        builtIn.computeGradientAndScore();
        fast.setInputs(x);
        fast.setLabels(y);
        fast.computeGradientAndScore();
        assertEquals(builtIn.score(), fast.score(), 1e-6 * Math.abs(builtIn.score()));
        Gradient a = builtIn.gradient(), b = fast.gradient();
        for (String key : a.gradientForVariable().keySet()) {
            assertClose(a.getGradientFor(key), b.getGradientFor(key), 1e-4, "gradient " + key);
        }
        for (int i = 0; i < 3; i++) {
            builtIn.fit(ds);
            fast.fit(ds);
        }
        // parameters include the BatchNorm running mean and variance
        assertClose(builtIn.params(), fast.params(), 1e-4, "parameters and running statistics after 3 SGD steps");
        assertEquals(0, NativeHelpers.fallbacks(fast), "a native helper failed and DL4J fell back to its built-in path");
    }

    @Test
    void doubleNetworksKeepTheBuiltInPathAndStayIdentical() {
        ComputationGraph builtIn = graph(DataType.DOUBLE);
        ComputationGraph fast = graph(DataType.DOUBLE);
        fast.setParams(builtIn.params().dup());
        NativeHelpers.install(fast);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 12, 12);
        assertEquals(builtIn.output(true, x)[0], fast.output(true, x)[0]);
    }

    @Test
    void rejectsUninitialisedNetworks() {
        MultiLayerNetwork none = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new CnnLossLayer.Builder().build()).build());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> NativeHelpers.install(none));
        assertTrue(e.getMessage().contains("init()"), e.getMessage());
    }
}
