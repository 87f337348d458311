package io.github.dl4jcnnplugins.compat;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.attention.NonLocal;
import io.github.dl4jcnnplugins.attention.SqueezeExcitation;
import io.github.dl4jcnnplugins.conv.CoordConv;
import io.github.dl4jcnnplugins.conv.DeformConv2d;
import io.github.dl4jcnnplugins.conv.GhostModule;
import io.github.dl4jcnnplugins.conv.Rfb;
import io.github.dl4jcnnplugins.pool.BlurPool;
import io.github.dl4jcnnplugins.pyramid.AsffVertex;
import io.github.dl4jcnnplugins.pyramid.Aspp;
import io.github.dl4jcnnplugins.spatial.SpatialTransformer;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.File;

/**
 * One network holding all eleven plug-ins, trained a few steps. {@link #main} writes it (ModelSerializer, with
 * updater) and an input / expected output next to it into {@code src/test/resources/compat/}; the files of each
 * release are kept, and {@code SavedModelCompatibilityTest} checks that later versions still load them and
 * compute the same. Regenerate only for a new release, never to make the test pass.
 */
public final class CompatModels {
    private CompatModels() {
    }

    static ComputationGraph allPlugins() {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).seed(2026).updater(new Adam(1e-3)).graphBuilder()
                .addInputs("image").setInputTypes(InputType.convolutional(24, 24, 3))
                .addLayer("stn", new SpatialTransformer.Builder().build(), "image")
                .addLayer("coord", new CoordConv.Builder().nOut(8).build(), "stn")
                .addLayer("se", new SqueezeExcitation.Builder().reduction(4).build(), "coord")
                .addLayer("cbam", new Cbam.Builder().reduction(4).spatialKernel(3).build(), "se")
                .addLayer("ghost", new GhostModule.Builder().nOut(16).build(), "cbam")
                .addLayer("rfb", new Rfb.Builder().nOut(16).build(), "ghost")
                .addLayer("nonlocal", new NonLocal.Builder().subSample(true).build(), "rfb")
                .addLayer("aspp", new Aspp.Builder().nOut(8).rates(2, 3).build(), "nonlocal")
                .addLayer("dcn", new DeformConv2d.Builder().nOut(8).modulation(true).build(), "aspp")
                .addLayer("p3", new BlurPool.Builder().filterSize(3).stride(2).build(), "dcn")          // 12x12
                .addLayer("p4", new ConvolutionLayer.Builder(2, 2).stride(2, 2).nOut(12)
                        .activation(Activation.RELU).build(), "p3")                                      // 6x6
                .addLayer("p5", new ConvolutionLayer.Builder(2, 2).stride(2, 2).nOut(16)
                        .activation(Activation.RELU).build(), "p4")                                      // 3x3
                .addVertex("asff", new AsffVertex.Builder().level(2).vis(true).build(), "p3", "p4", "p5")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "asff")
                .addLayer("out", new OutputLayer.Builder(LossFunctions.LossFunction.MSE).nOut(2)
                        .activation(Activation.IDENTITY).build(), "pool")
                .setOutputs("out").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    /** Writes {@code <dir>/plugins-<version>.zip} and {@code <dir>/plugins-<version>.npz}. */
    public static void main(String[] args) throws Exception {
        String version = args[0];
        File dir = new File(args[1]);
        Nd4j.getRandom().setSeed(7);
        ComputationGraph net = allPlugins();
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 24, 24);
        INDArray y = Nd4j.rand(DataType.DOUBLE, 2, 2);
        for (int i = 0; i < 3; i++) {
            net.fit(new DataSet(x, y));
        }
        INDArray out = net.outputSingle(false, x);
        ModelSerializer.writeModel(net, new File(dir, "plugins-" + version + ".zip"), true);
        Nd4j.writeAsNumpy(x, new File(dir, "plugins-" + version + ".input.npy"));
        Nd4j.writeAsNumpy(out, new File(dir, "plugins-" + version + ".output.npy"));
    }
}
