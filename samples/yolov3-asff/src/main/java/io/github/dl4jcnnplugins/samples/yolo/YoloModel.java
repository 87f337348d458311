package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.pyramid.AsffVertex;
import io.github.dl4jcnnplugins.samples.yolo.detection.Anchors;
import io.github.dl4jcnnplugins.samples.yolo.detection.BoundedActivation;
import io.github.dl4jcnnplugins.samples.yolo.detection.Yolo3OutputLayer;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.GradientNormalization;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.ElementWiseVertex;
import org.deeplearning4j.nn.conf.graph.MergeVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.Upsampling2D;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.activations.impl.ActivationLReLU;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.schedule.FixedSchedule;
import org.nd4j.linalg.schedule.ISchedule;
import org.nd4j.linalg.schedule.MapSchedule;
import org.nd4j.linalg.schedule.ScheduleType;

/**
 * The detector: a small Darknet-style backbone, the YOLOv3 top-down pyramid (strides 8, 16, 32), an
 * {@link AsffVertex} at each level (or, with {@code asff = false}, the plain pyramid) and one YOLO head per scale.
 *
 * <pre>
 * image [N,3,S,S]
 *   stem 3x3/2 (w) -> down 3x3/2 (2w) + res -> down (4w) + res = C3 (stride 8)
 *                   -> down (8w) + res = C4 (stride 16) -> down (16w) + res = C5 (stride 32)
 * top-down: l0 = 1x1(8w)(C5);                          x0 = 3x3(16w)(l0)      stride 32
 *           l1 = 1x1(4w)(cat[up2(1x1(4w)(l0)), C4]);   x1 = 3x3(8w)(l1)       stride 16
 *           l2 = 1x1(2w)(cat[up2(1x1(2w)(l1)), C3]);   x2 = 3x3(4w)(l2)       stride 8
 * ASFF:     f_l = AsffVertex(level l)(x2, x1, x0)   (finest first), l = 0, 1, 2
 * heads:    1x1 conv to 3 (5 + C), w/h logits bounded by 4 tanh(x / 4) -> Yolo3OutputLayer (three priors in grid units of the scale)
 * outputs:  "yolo8" [N, 3(5+C), S/8, S/8], "yolo16", "yolo32"   (label order of YoloBatches)
 * </pre>
 * Every plain convolution is conv (no bias) + BatchNorm + LeakyReLU(0.1), as in Darknet. The heads' confidence
 * biases start at sigmoid^-1(0.01) ({@link #CONFIDENCE_BIAS}).
 */
public final class YoloModel {
    public static final String[] OUTPUTS = {"yolo8", "yolo16", "yolo32"};
    /** ASFF vertex names by pyramid level (0 = stride 32 ... 2 = stride 8). */
    public static final String[] ASFF = {"asff0", "asff1", "asff2"};
    /**
     * Initial bias of every confidence logit: sigmoid(b) = 0.01, the prior-probability initialisation of RetinaNet
     * (Lin et al. 2017) that YOLOv5 also uses. With PyTorch's default (b = 0, confidence 0.5 in each of the
     * 3 x (16^2 + 8^2 + 4^2) boxes of a 128x128 image) the first epochs only push the no-object confidences down.
     */
    static final double CONFIDENCE_BIAS = Math.log(0.01 / 0.99);
    /** Bound of the heads' width and height logits (see {@link BoundedActivation}). */
    static final double HEAD_BOUND = 4.0;

    private YoloModel() {
    }

    public static ComputationGraph build(int imageSize, int width, int numClasses, boolean asff, double learningRate, long seed) {
        return build(imageSize, width, numClasses, asff, learningRate, 0, seed);
    }

    /**
     * The Adam learning rate over {@code totalIterations} minibatches: a linear warm-up over the first 5% (at most
     * 20 minibatches), then a linear decay in 20 steps to 5% of {@code learningRate}, which it keeps afterwards
     * (e.g. when a resumed run trains longer). {@code totalIterations <= 0}: constant. Built from DL4J's
     * {@link MapSchedule} so that it serialises with the model.
     */
    public static ISchedule learningRateSchedule(double learningRate, int totalIterations) {
        if (totalIterations <= 0) {
            return new FixedSchedule(learningRate);
        }
        MapSchedule.Builder b = new MapSchedule.Builder(ScheduleType.ITERATION);
        int warmup = Math.max(1, Math.min(20, totalIterations / 20));
        for (int i = 0; i < warmup; i++) {
            b.add(i, learningRate * (i + 1) / warmup);
        }
        int steps = 20;
        for (int k = 0; k < steps; k++) {
            int at = warmup + (int) ((long) k * (totalIterations - warmup) / steps);
            if (k == 0 || at > warmup) {
                b.add(at, learningRate * Math.max(0.05, 1.0 - (double) k / steps));
            }
        }
        b.add(Math.max(warmup + 1, totalIterations), learningRate * 0.05);
        return b.build();
    }

    /** As above, with {@link #learningRateSchedule(double, int)} over {@code totalIterations} minibatches. */
    public static ComputationGraph build(int imageSize, int width, int numClasses, boolean asff, double learningRate,
                                         int totalIterations, long seed) {
        if (imageSize % 32 != 0) {
            throw new IllegalArgumentException("image size must be a multiple of 32 (the coarsest stride); got " + imageSize);
        }
        if (width < 2) {
            throw new IllegalArgumentException("width must be at least 2; got " + width);
        }
        ComputationGraphConfiguration.GraphBuilder g = new NeuralNetConfiguration.Builder()
                .seed(seed).dataType(DataType.FLOAT).updater(new Adam(learningRateSchedule(learningRate, totalIterations))).weightInit(WeightInit.RELU)
                .convolutionMode(ConvolutionMode.Same).l2(5e-4)
                .gradientNormalization(GradientNormalization.RenormalizeL2PerLayer)
                .graphBuilder()
                .addInputs("image").setInputTypes(InputType.convolutional(imageSize, imageSize, 3));
        int w = width;
        String x = cbl(g, "stem", "image", w, 3, 2);
        x = cbl(g, "down1", x, 2 * w, 3, 2);
        x = res(g, "res1", x, 2 * w);
        x = cbl(g, "down2", x, 4 * w, 3, 2);
        String c3 = res(g, "res2", x, 4 * w);
        x = cbl(g, "down3", c3, 8 * w, 3, 2);
        String c4 = res(g, "res3", x, 8 * w);
        x = cbl(g, "down4", c4, 16 * w, 3, 2);
        String c5 = res(g, "res4", x, 16 * w);

        String l0 = cbl(g, "neck0", c5, 8 * w, 1, 1);
        String x0 = cbl(g, "level0", l0, 16 * w, 3, 1);
        String u1 = up(g, "up1", cbl(g, "lat1", l0, 4 * w, 1, 1));
        g.addVertex("cat1", new MergeVertex(), u1, c4);
        String l1 = cbl(g, "neck1", "cat1", 4 * w, 1, 1);
        String x1 = cbl(g, "level1", l1, 8 * w, 3, 1);
        String u2 = up(g, "up2", cbl(g, "lat2", l1, 2 * w, 1, 1));
        g.addVertex("cat2", new MergeVertex(), u2, c3);
        String l2 = cbl(g, "neck2", "cat2", 2 * w, 1, 1);
        String x2 = cbl(g, "level2", l2, 4 * w, 3, 1);

        String[] features = {x2, x1, x0};   // by scale: stride 8, 16, 32
        if (asff) {
            for (int level = 0; level < 3; level++) {
                g.addVertex(ASFF[level], new AsffVertex.Builder().level(level).vis(true).build(), x2, x1, x0);
                features[2 - level] = ASFF[level];
            }
        }
        Anchors anchors = Anchors.forImageSize(imageSize);
        for (int s = 0; s < 3; s++) {
            g.addLayer("head" + Anchors.STRIDES[s], new ConvolutionLayer.Builder(1, 1)
                    .nOut(Anchors.PER_SCALE * (5 + numClasses)).activation(new BoundedActivation(HEAD_BOUND, 5 + numClasses))
                    .weightInit(WeightInit.XAVIER).build(), features[s]);
            g.addLayer(OUTPUTS[s], new Yolo3OutputLayer.Builder().priors(anchors.priorsGridUnits(s)).build(),
                    "head" + Anchors.STRIDES[s]);
        }
        g.setOutputs(OUTPUTS);
        ComputationGraph net = new ComputationGraph(g.build());
        net.init();
        for (int s = 0; s < 3; s++) {
            INDArray bias = net.getLayer("head" + Anchors.STRIDES[s]).getParam("b");
            for (int prior = 0; prior < Anchors.PER_SCALE; prior++) {
                bias.putScalar(prior * (5 + numClasses) + 4, CONFIDENCE_BIAS);
            }
        }
        return net;
    }

    /**
     * conv (no bias) + BatchNorm + LeakyReLU(0.1); returns the output name. The activation is a layer of its own:
     * DL4J 1.0.0-M2.1's {@code BatchNormalization} accepts an activation in its builder but never applies it
     * (forward or backward), which left the whole backbone linear until this was found.
     */
    private static String cbl(ComputationGraphConfiguration.GraphBuilder g, String name, String in, int out, int k, int s) {
        g.addLayer(name + "-conv", new ConvolutionLayer.Builder(k, k).stride(s, s).nOut(out).hasBias(false)
                .activation(Activation.IDENTITY).build(), in);
        g.addLayer(name + "-bn", new BatchNormalization.Builder().build(), name + "-conv");
        g.addLayer(name, new ActivationLayer.Builder().activation(new ActivationLReLU(0.1)).build(), name + "-bn");
        return name;
    }

    /** Darknet residual: 1x1 (c/2) then 3x3 (c), added to the input. */
    private static String res(ComputationGraphConfiguration.GraphBuilder g, String name, String in, int c) {
        String a = cbl(g, name + "-a", in, c / 2, 1, 1);
        String b = cbl(g, name + "-b", a, c, 3, 1);
        g.addVertex(name, new ElementWiseVertex(ElementWiseVertex.Op.Add), in, b);
        return name;
    }

    private static String up(ComputationGraphConfiguration.GraphBuilder g, String name, String in) {
        g.addLayer(name, new Upsampling2D.Builder(2).build(), in);
        return name;
    }
}
