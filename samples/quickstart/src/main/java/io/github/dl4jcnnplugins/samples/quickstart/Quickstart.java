package io.github.dl4jcnnplugins.samples.quickstart;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.attention.SqueezeExcitation;
import io.github.dl4jcnnplugins.conv.CoordConv;
import io.github.dl4jcnnplugins.pool.BlurPool;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.Random;
import java.util.concurrent.Callable;

/**
 * The quickstart: learn where a bright dot is. CoordConv's classic task (locating a point needs coordinates a
 * plain convolution does not have), in a small network that also uses BlurPool, Squeeze-and-Excitation and CBAM.
 *
 * <pre>
 * input [N, 1, 16, 16] -> CoordConv(8, 3x3) -> ReLU conv -> BlurPool(/2) -> SE -> CBAM -> global avg pool
 *                      -> dense output (x, y) in [-1, 1]
 * </pre>
 * It trains for a few hundred Adam steps on freshly drawn images and prints the mean position error in pixels
 * before and after, and a few predictions next to the truth.
 */
@Command(name = "quickstart", mixinStandardHelpOptions = true,
        description = "Trains a small network of dl4j-cnn-plugins layers to locate a dot, and prints what it learned.")
public final class Quickstart implements Callable<Integer> {
    static final int SIZE = 16;

    @Option(names = "--iterations", description = "Adam steps (default ${DEFAULT-VALUE}).")
    int iterations = 200;

    @Option(names = "--batch", description = "Images per step (default ${DEFAULT-VALUE}).")
    int batch = 32;

    @Option(names = "--seed", description = "Random seed (default ${DEFAULT-VALUE}).")
    long seed = 42;

    public static void main(String[] args) {
        System.exit(new CommandLine(new Quickstart()).execute(args));
    }

    /** The network: every layer between the input and the head is a plug-in or a plain convolution. */
    static ComputationGraph network(long seed) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(seed).dataType(DataType.FLOAT).updater(new Adam(3e-3))
                .graphBuilder()
                .addInputs("image").setInputTypes(InputType.convolutional(SIZE, SIZE, 1))
                .addLayer("coord", new CoordConv.Builder().nOut(8).kernelSize(3).padding(1).build(), "image")
                .addLayer("conv", new ConvolutionLayer.Builder(3, 3).padding(1, 1).nOut(16)
                        .activation(Activation.RELU).build(), "coord")
                .addLayer("blur", new BlurPool.Builder().filterSize(3).stride(2).build(), "conv")
                .addLayer("se", new SqueezeExcitation.Builder().reduction(4).build(), "blur")
                .addLayer("cbam", new Cbam.Builder().reduction(4).spatialKernel(3).build(), "se")
                .addLayer("head", new ConvolutionLayer.Builder(1, 1).nOut(2).activation(Activation.IDENTITY).build(), "cbam")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.SUM).build(), "head")
                .addLayer("xy", new OutputLayer.Builder(LossFunctions.LossFunction.MSE).nOut(2)
                        .activation(Activation.IDENTITY).build(), "pool")
                .setOutputs("xy").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    /** {@code n} images with one bright 2x2 dot each, and the dot's centre in [-1, 1] (x, y). */
    static DataSet dots(int n, Random rnd) {
        INDArray x = Nd4j.zeros(DataType.FLOAT, n, 1, SIZE, SIZE);
        INDArray y = Nd4j.zeros(DataType.FLOAT, n, 2);
        for (int i = 0; i < n; i++) {
            int r = rnd.nextInt(SIZE - 1);
            int c = rnd.nextInt(SIZE - 1);
            for (int dr = 0; dr < 2; dr++) {
                for (int dc = 0; dc < 2; dc++) {
                    x.putScalar(new long[]{i, 0, r + dr, c + dc}, 1.0);
                }
            }
            y.putScalar(i, 0, toUnit(c + 0.5));
            y.putScalar(i, 1, toUnit(r + 0.5));
        }
        return new DataSet(x, y);
    }

    static double toUnit(double pixel) {
        return pixel / (SIZE - 1) * 2 - 1;
    }

    static double toPixel(double unit) {
        return (unit + 1) / 2 * (SIZE - 1);
    }

    /** Mean Euclidean distance, in pixels, between predicted and true dot centres. */
    static double meanErrorPixels(ComputationGraph net, DataSet data) {
        INDArray p = net.outputSingle(false, data.getFeatures());
        INDArray d = p.sub(data.getLabels()).muli((SIZE - 1) / 2.0);
        return org.nd4j.linalg.ops.transforms.Transforms.sqrt(d.mul(d).sum(1), false).meanNumber().doubleValue();
    }

    @Override
    public Integer call() {
        Random rnd = new Random(seed);
        Nd4j.getRandom().setSeed(seed);
        ComputationGraph net = network(seed);
        DataSet test = dots(256, new Random(seed + 1));
        System.out.printf("network: %d parameters; plug-ins: CoordConv, BlurPool, SqueezeExcitation, Cbam%n", net.numParams());
        System.out.printf("before training: mean position error %.2f px on %d held-out images%n",
                meanErrorPixels(net, test), test.numExamples());
        long start = System.nanoTime();
        for (int it = 1; it <= iterations; it++) {
            net.fit(dots(batch, rnd));
            if (it % 100 == 0 || it == iterations) {
                System.out.printf("  step %4d  loss %.4f  held-out error %.2f px%n", it, net.score(), meanErrorPixels(net, test));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double after = meanErrorPixels(net, test);
        System.out.printf("after %d steps (%.1f s): mean position error %.2f px%n", iterations, seconds, after);
        INDArray p = net.outputSingle(false, test.getFeatures());
        System.out.println("what it learned (true dot centre -> predicted), in pixels:");
        for (int i = 0; i < 5; i++) {
            System.out.printf("  (%5.1f, %5.1f) -> (%5.1f, %5.1f)%n",
                    toPixel(test.getLabels().getDouble(i, 0)), toPixel(test.getLabels().getDouble(i, 1)),
                    toPixel(p.getDouble(i, 0)), toPixel(p.getDouble(i, 1)));
        }
        return 0;
    }
}
