package io.github.dl4jcnnplugins.pyramid;

import io.github.dl4jcnnplugins.base.ExposesIntermediates;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.SubsamplingLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.File;
import java.nio.file.Files;
import java.util.List;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AsffVertexTest {

    static List<String> goldens() {
        return PluginHarness.goldenNames("ASFF");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * One image -> a tiny three-level pyramid made by three different layers (conv, conv stride 2, pool) ->
     * ASFF at {@code level} -> dense output.
     */
    static ComputationGraph pyramidNet(int level, IUpdater updater, boolean vis) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).updater(updater).seed(11).graphBuilder()
                .addInputs("image").setInputTypes(InputType.convolutional(8, 8, 2))
                .addLayer("p3", new ConvolutionLayer.Builder(3, 3).padding(1, 1).nOut(2).activation(Activation.TANH).build(), "image")
                .addLayer("p4", new ConvolutionLayer.Builder(3, 3).stride(2, 2).padding(1, 1).nOut(3)
                        .activation(Activation.TANH).build(), "p3")
                .addLayer("p5pool", new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.AVG).kernelSize(2, 2)
                        .stride(2, 2).build(), "p4")
                .addLayer("p5", new ConvolutionLayer.Builder(1, 1).nOut(4).activation(Activation.TANH).build(), "p5pool")
                .addVertex("asff", new AsffVertex.Builder().level(level).rfb(true).vis(vis).build(), "p3", "p4", "p5")
                .addLayer("out", new OutputLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY)
                        .nOut(2).build(), "asff")
                .setOutputs("out").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    /**
     * Double-precision gradient check of ASFF at level 1 (upsampling, stride-2 conv, the weight branch) and of the
     * layers feeding its three inputs. (Every level's gradients are also compared with PyTorch's by the goldens;
     * GradientCheckUtil checks every entry of a ComputationGraph, two forwards each, so one level keeps it fast.)
     */
    @Test
    void gradientsCheck() {
        ComputationGraph net = pyramidNet(1, new NoOp(), false);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(net)
                .inputs(new INDArray[]{PluginHarness.randn(1, 2, 2, 8, 8)})
                .labels(new INDArray[]{PluginHarness.randn(2, 2, 2)})
                .epsilon(1e-6).maxRelError(1e-5).minAbsoluteError(1e-9)
                .excludeParams(java.util.Set.of("out_W", "out_b"))
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY));
        assertTrue(ok, "gradient check");
    }

    @Test
    void trainsAndRoundTrips() throws Exception {
        ComputationGraph net = pyramidNet(1, new Sgd(0.05), true);
        INDArray x = PluginHarness.randn(3, 4, 2, 8, 8);
        INDArray y = PluginHarness.randn(4, 4, 2);
        double before = net.score(new DataSet(x, y));
        for (int i = 0; i < 5; i++) {
            net.fit(new DataSet(x, y));
        }
        assertTrue(net.score(new DataSet(x, y)) < before, "loss did not fall");

        INDArray expected = net.outputSingle(false, x);
        ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(net.getConfiguration().toJson());
        assertEquals(net.getConfiguration(), back);
        File f = Files.createTempFile("asff", ".zip").toFile();
        ModelSerializer.writeModel(net, f, true);
        ComputationGraph restored = ModelSerializer.restoreComputationGraph(f, true);
        assertTrue(f.delete());
        assertEquals(expected, restored.outputSingle(false, x), "output after ModelSerializer round trip");
        INDArray first = restored.outputSingle(false, x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 1)));
        assertTrue(PluginHarness.relativeError(expected.getRow(0).reshape(first.shape()), first) < 1e-12,
                "inference uses running statistics: one sample alone equals its row in the batch");
    }

    @Test
    void fusionWeightsAreAvailableWithVis() {
        ComputationGraph net = pyramidNet(2, new NoOp(), true);
        net.output(PluginHarness.randn(5, 3, 2, 8, 8));
        INDArray w = AsffVertex.fusionWeights(net, "asff");
        assertArrayEquals(new long[]{3, 3, 8, 8}, w.shape());
        INDArray sum = w.sum(1);
        assertTrue(sum.sub(1.0).amaxNumber().doubleValue() < 1e-12, "softmax weights sum to 1 at every pixel");
        assertTrue(((ExposesIntermediates) net.getVertex("asff")).exposed().containsKey(AsffVertex.FUSED_SUM));
        assertErrorMentions(() -> AsffVertex.fusionWeights(pyramidNet(2, new NoOp(), false), "asff"), "vis(true)");
    }

    @Test
    void declaredOutputTypeIsReal() {
        for (int level = 0; level < 3; level++) {
            ComputationGraph net = pyramidNet(level, new NoOp(), false);
            InputType declared = net.getConfiguration().getLayerActivationTypes(InputType.convolutional(8, 8, 2)).get("asff");
            INDArray actual = net.feedForward(PluginHarness.randn(6, 1, 2, 8, 8), false).get("asff");
            long[] s = actual.shape();
            assertEquals(InputType.convolutional(s[2], s[3], s[1]), declared, "level " + level);
        }
    }

    @Test
    void badPyramidsAreExplained() {
        assertErrorMentions(() -> new AsffVertex.Builder().level(3).build(), "AsffVertex", "`level`", "0, 1 or 2", "level=3");
        assertErrorMentions(() -> new AsffVertex.Builder().build(), "AsffVertex", "`level`", "level=-1");
        assertErrorMentions(() -> graph(new AsffVertex.Builder().level(1).build(), new long[][]{{4, 4, 8}, {2, 2, 16}}),
                "AsffVertex (level=1)", "expected 3 inputs; got 2");
        assertErrorMentions(() -> graph(new AsffVertex.Builder().level(1).build(), new long[][]{{16, 2, 2}, {8, 4, 4}, {4, 8, 8}}),
                "AsffVertex (level=1)", "wrong input order", "finest first", "[N,16,2,2], [N,8,4,4], [N,4,8,8]");
        assertErrorMentions(() -> graph(new AsffVertex.Builder().level(1).build(), new long[][]{{4, 8, 8}, {8, 4, 4}, {16, 3, 3}}),
                "AsffVertex (level=1)", "not exactly 2x apart", "[N,4,8,8], [N,8,4,4], [N,16,3,3]");
        assertErrorMentions(() -> graph(new AsffVertex.Builder().level(1).multiplier(0.0625).build(),
                        new long[][]{{16, 8, 8}, {32, 4, 4}, {48, 2, 2}}),
                "AsffVertex (level=1, multiplier=0.0625)", "multiplier 0.0625", "[16, 32, 64]", "[N,48,2,2]");
    }

    @Test
    void wrongRuntimeSizesAreExplained() {
        ComputationGraph net = ReferenceRunner.network(new AsffVertex.Builder().level(2).build(),
                List.of(new long[]{1, 4, 8, 8}, new long[]{1, 8, 4, 4}, new long[]{1, 16, 2, 2}), DataType.DOUBLE);
        assertErrorMentions(() -> net.output(PluginHarness.randn(1, 1, 4, 8, 8), PluginHarness.randn(2, 1, 8, 4, 4),
                PluginHarness.randn(3, 1, 16, 3, 3)), "AsffVertex 'plugin'", "not exactly 2x apart");
    }

    /** A graph with inputs of the given {c, h, w} feeding {@code asff}. */
    private static ComputationGraph graph(AsffVertex asff, long[][] chw) {
        String[] names = new String[chw.length];
        InputType[] types = new InputType[chw.length];
        for (int i = 0; i < chw.length; i++) {
            names[i] = "in" + i;
            types[i] = InputType.convolutional(chw[i][1], chw[i][2], chw[i][0]);
        }
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().graphBuilder()
                .addInputs(names).setInputTypes(types).addVertex("asff", asff, names).setOutputs("asff").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }
}
