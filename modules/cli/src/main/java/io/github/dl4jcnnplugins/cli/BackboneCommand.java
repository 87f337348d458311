package io.github.dl4jcnnplugins.cli;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.attention.SqueezeExcitation;
import io.github.dl4jcnnplugins.base.NativeHelpers;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.ElementWiseVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.CnnLossLayer;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code plugins backbone}: what a plug-in costs inside a backbone, as the SE paper measures it. A ResNet stage
 * of bottleneck blocks (1x1 -> 3x3 -> 1x1 convolutions with BatchNorm and ReLU, identity shortcut through an
 * {@code ElementWiseVertex}) built from DL4J's own layers, timed plain, with a {@link SqueezeExcitation} and with a
 * {@link Cbam} on each block's residual branch before the addition (as in SE-ResNet / CBAM-ResNet).
 * {@code benchmarks/backbone_torch.py} builds the same stage in PyTorch.
 */
@Command(name = "backbone",
        description = {
                "Time a ResNet-style stage (bottleneck blocks of DL4J layers) plain, with SE and with CBAM in each "
                        + "block: forward and forward+backward, float32, train mode.",
                "",
                "Mirrors benchmarks/backbone_torch.py; benchmarks/backbone.sh runs both and prints the overhead."},
        sortOptions = false,
        mixinStandardHelpOptions = true)
final class BackboneCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--blocks", defaultValue = "3", paramLabel = "N", description = "Bottleneck blocks (default: ${DEFAULT-VALUE}).")
    int blocks;

    @Option(names = "--channels", defaultValue = "256", paramLabel = "C",
            description = "Stage width; the bottleneck is C/4 (default: ${DEFAULT-VALUE}).")
    int channels;

    @Option(names = "--size", defaultValue = "56", paramLabel = "HW", description = "Height = width (default: ${DEFAULT-VALUE}).")
    int size;

    @Option(names = "--batch", defaultValue = "8", paramLabel = "N", description = "Minibatch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--variants", split = ",", defaultValue = "plain,se,cbam", paramLabel = "V",
            description = "Which of plain, se, cbam, in this order (default: ${DEFAULT-VALUE}).")
    List<String> variants;

    @Option(names = "--runs", defaultValue = "5", paramLabel = "N", description = "Timed rounds; medians (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "2", paramLabel = "N", description = "Untimed rounds first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--threads", defaultValue = "2", paramLabel = "N",
            description = "Threads for ND4J's ops and BLAS (default: ${DEFAULT-VALUE}); set OMP_NUM_THREADS too.")
    int threads;

    @Option(names = "--native-helpers", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run the stage's DL4J convolution and BatchNorm layers on libnd4j's native ops "
                    + "(NativeHelpers.install, as the YOLO sample does; --no-native-helpers: DL4J's Java path).")
    boolean nativeHelpers;

    @Override
    public Integer call() {
        CommandLine cl = spec.commandLine();
        if (blocks < 1 || channels < 16 || channels % 4 != 0 || size < 1 || batch < 1 || runs < 1 || warmup < 0
                || threads < 1) {
            throw new CommandLine.ParameterException(cl, "need --blocks >= 1, --channels >= 16 and divisible by 4, "
                    + "--size, --batch, --runs, --threads >= 1 and --warmup >= 0");
        }
        for (String v : variants) {
            if (!List.of("plain", "se", "cbam").contains(v)) {
                throw new CommandLine.ParameterException(cl, "unknown variant '" + v + "': expected plain, se or cbam");
            }
        }
        BenchCommand.useThreads(threads);

        PrintWriter out = cl.getOut();
        String omp = System.getenv("OMP_NUM_THREADS");
        out.println("# dl4j-cnn-plugins " + SystemInfo.versions() + ", threads " + threads + " (OMP_NUM_THREADS "
                + (omp == null ? "unset" : omp) + "), cpu: " + SystemInfo.cpuModel());
        out.println("# " + SystemInfo.nativeBuild());
        out.println(String.format(Locale.ROOT, "# stage: %d bottleneck blocks, %d channels (bottleneck %d), input %dx%dx%dx%d, "
                        + "float32, train mode; medians of %d rounds after %d warm-up, variants interleaved; fwd = "
                        + "ComputationGraph.output(train=true), fwd+bwd = computeGradientAndScore (CnnLossLayer MSE); DL4J "
                        + "layers on %s",
                blocks, channels, channels / 4, batch, channels, size, size, runs, warmup,
                nativeHelpers ? "native ops (NativeHelpers)" : "DL4J's built-in path"));
        out.println(String.format(Locale.ROOT, "%-8s %12s %10s %11s %5s", "variant", "params", "fwd ms", "fwd+bwd ms", "bg%"));
        out.flush();

        int n = variants.size();
        ComputationGraph[] nets = new ComputationGraph[n];
        for (int i = 0; i < n; i++) {
            nets[i] = stage(variants.get(i));
            if (nativeHelpers) {
                NativeHelpers.install(nets[i]);
            }
        }
        Nd4j.getRandom().setSeed(0);
        INDArray x = Nd4j.randn(DataType.FLOAT, batch, channels, size, size);
        INDArray y = Nd4j.randn(DataType.FLOAT, batch, channels, size, size);
        double[][] fwd = new double[n][runs];
        double[][] fb = new double[n][runs];
        BenchCommand.BackgroundLoad load = new BenchCommand.BackgroundLoad();
        for (int r = 0; r < warmup + runs; r++) {
            for (int i = 0; i < n; i++) {   // interleaved, so that a change in background load hits every variant
                long t0 = System.nanoTime();
                nets[i].output(true, x);
                long t1 = System.nanoTime();
                nets[i].setInputs(x);
                nets[i].setLabels(y);
                nets[i].computeGradientAndScore();
                long t2 = System.nanoTime();
                if (r >= warmup) {
                    fwd[i][r - warmup] = (t1 - t0) / 1e6;
                    fb[i][r - warmup] = (t2 - t1) / 1e6;
                }
            }
        }
        double bg = load.percent();
        for (int i = 0; i < n; i++) {
            out.println(String.format(Locale.ROOT, "%-8s %12d %10.2f %11.2f %5.1f", variants.get(i), nets[i].numParams(),
                    BenchCommand.median(fwd[i]), BenchCommand.median(fb[i]), bg));
        }
        out.flush();
        return 0;
    }

    /** The stage with {@code variant} (plain, se, cbam) on each block's residual branch. */
    private ComputationGraph stage(String variant) {
        int mid = channels / 4;
        ComputationGraphConfiguration.GraphBuilder g = new NeuralNetConfiguration.Builder()
                .dataType(DataType.FLOAT).updater(new NoOp()).weightInit(WeightInit.RELU).seed(1)
                .graphBuilder()
                .addInputs("in").setInputTypes(InputType.convolutional(size, size, channels));
        String prev = "in";
        for (int b = 0; b < blocks; b++) {
            String p = "b" + b + "-";
            String branch = convBn(g, p + "1", conv(1, mid), true, prev);
            branch = convBn(g, p + "2", conv(3, mid), true, branch);
            branch = convBn(g, p + "3", conv(1, channels), false, branch);
            if (variant.equals("se")) {
                g.addLayer(p + "se", new SqueezeExcitation.Builder().reduction(16).build(), branch);
                branch = p + "se";
            } else if (variant.equals("cbam")) {
                g.addLayer(p + "cbam", new Cbam.Builder().reduction(16).spatialKernel(7).build(), branch);
                branch = p + "cbam";
            }
            g.addVertex(p + "add", new ElementWiseVertex(ElementWiseVertex.Op.Add), branch, prev);
            g.addLayer(p + "relu", new ActivationLayer.Builder().activation(Activation.RELU).build(), p + "add");
            prev = p + "relu";
        }
        g.addLayer("loss", new CnnLossLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY)
                .build(), prev);
        g.setOutputs("loss");
        ComputationGraph net = new ComputationGraph(g.build());
        net.init();
        return net;
    }

    private static Layer conv(int k, int nOut) {
        return new ConvolutionLayer.Builder(k, k).padding(k / 2, k / 2).nOut(nOut).hasBias(false)
                .activation(Activation.IDENTITY).build();
    }

    private static String convBn(ComputationGraphConfiguration.GraphBuilder g, String name, Layer conv, boolean relu,
                                 String input) {
        g.addLayer(name + "-conv", conv, input);
        g.addLayer(name + "-bn", new BatchNormalization.Builder().eps(1e-5).decay(0.9).build(), name + "-conv");
        if (!relu) {
            return name + "-bn";
        }
        // a layer of its own: DL4J 1.0.0-M2.1's BatchNormalization ignores the activation in its builder
        g.addLayer(name + "-relu", new ActivationLayer.Builder().activation(Activation.RELU).build(), name + "-bn");
        return name + "-relu";
    }
}
