package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.weights.WeightInit;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Yolo3OutputLayer}: the loss against a plain-Java reference of the YOLOv3 formulas, the gradient against
 * central finite differences, serialisation and the error messages.
 */
class Yolo3OutputLayerTest {
    private static final LayerWorkspaceMgr NO_WS = LayerWorkspaceMgr.noWorkspaces();
    /** Two priors in grid units; C = 2 classes; 3x3 grid. */
    private static final double[][] PRIORS = {{0.8, 1.0}, {1.6, 1.2}};
    private static final int B = 2, C = 2, PER = 5 + C, G = 3, N = 2;

    @TempDir
    Path dir;

    // ------------------------------------------------------------------------------------------- the tiny case

    /** Labels: example 0 has boxes in cells (row 0, col 1) and (row 2, col 2); example 1 one box in (1, 1). */
    private static INDArray labels(DataType dt) {
        INDArray l = Nd4j.zeros(dt, N, 4 + C, G, G);
        box(l, 0, 1.1, 0.2, 2.1, 1.4, 0);    // 1.0 x 1.2, centre (1.6, 0.8): cell row 0, col 1, prior 0
        box(l, 0, 1.9, 1.7, 3.0, 2.9, 1);    // 1.1 x 1.2, centre (2.45, 2.3): cell row 2, col 2, prior 1
        box(l, 1, 0.1, 0.6, 1.9, 1.9, 1);    // 1.8 x 1.3, centre (1.0, 1.25): cell row 1, col 1, prior 1
        return l;
    }

    private static void box(INDArray l, int n, double x1, double y1, double x2, double y2, int cls) {
        int row = (int) Math.floor((y1 + y2) / 2), col = (int) Math.floor((x1 + x2) / 2);
        double[] v = {x1, y1, x2, y2};
        for (int k = 0; k < 4; k++) {
            l.putScalar(new long[]{n, k, row, col}, v[k]);
        }
        l.putScalar(new long[]{n, 4 + cls, row, col}, 1.0);
    }

    /**
     * Random logits, plus three predictions of priors that are not responsible but decode to (almost) a true box,
     * so that only the ignore rule keeps their no-object loss out: two in the box's own cell, one in the cell
     * left of it.
     */
    private static INDArray input(DataType dt, long seed) {
        Random r = new Random(seed);
        double[] v = new double[N * B * PER * G * G];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
        }
        INDArray x = Nd4j.create(v, new long[]{N, B * PER, G, G}, 'c');
        predict(x, 0, 1, 0, 1, 1.6, 0.8, 1.0, 1.2);          // IoU 1 with the first box
        predict(x, 0, 0, 2, 2, 2.4, 2.35, 1.05, 1.15);       // IoU 0.85 with the second
        predict(x, 1, 1, 1, 0, 0.95, 1.25, 1.8, 1.3);        // cell (1, 0): IoU 0.95 with the box of cell (1, 1)
        return x.castTo(dt);
    }

    /** Logits of prior {@code b} in cell (row, col) of example n that decode to the box (cx, cy, w, h). */
    private static void predict(INDArray x, int n, int b, int row, int col, double cx, double cy, double w, double h) {
        double ox = cx - col, oy = cy - row;
        double[] z = {Math.log(ox / (1 - ox)), Math.log(oy / (1 - oy)), Math.log(w / PRIORS[b][0]), Math.log(h / PRIORS[b][1])};
        for (int k = 0; k < 4; k++) {
            x.putScalar(new long[]{n, b * PER + k, row, col}, z[k]);
        }
    }

    private static Yolo3OutputLayer.Builder builder() {
        return new Yolo3OutputLayer.Builder().priors(Nd4j.create(PRIORS)).name("yolo");
    }

    private static Yolo3OutputLayerImpl layer(Yolo3OutputLayer conf, DataType dt) {
        NeuralNetConfiguration nnc = new NeuralNetConfiguration.Builder().dataType(dt).layer(conf).build();
        return (Yolo3OutputLayerImpl) conf.instantiate(nnc, List.of(), 0, null, true, dt);
    }

    private static double score(Yolo3OutputLayerImpl layer, INDArray x, INDArray labels) {
        layer.setInput(x, NO_WS);
        layer.setLabels(labels);
        return layer.computeScore(0, true, NO_WS);
    }

    // ------------------------------------------------------------------------------------------- reference

    /** What the reference loop found besides the loss. */
    record Reference(double loss, int ignored, double closestToThreshold) {
    }

    /**
     * The YOLOv3 loss written out per prediction from the formulas (no vectorisation, BCE in its log form), for
     * the data of the tiny case: x {@code [N][B*(5+C)][G][G]} logits, labels {@code [N][4+C][G][G]}.
     */
    static Reference reference(double[][][][] x, double[][][][] lab, double lambdaCoord, double lambdaObj,
                               double lambdaNoObj, double lambdaClass, double threshold) {
        int n = x.length, g = x[0][0].length;
        double total = 0, closest = Double.MAX_VALUE;
        int ignored = 0;
        for (int i = 0; i < n; i++) {
            List<double[]> truths = new ArrayList<>();   // x1, y1, x2, y2, row, col, responsible prior
            for (int row = 0; row < g; row++) {
                for (int col = 0; col < g; col++) {
                    if (lab[i][4][row][col] + lab[i][5][row][col] > 0) {
                        double w = lab[i][2][row][col] - lab[i][0][row][col], h = lab[i][3][row][col] - lab[i][1][row][col];
                        int best = 0;
                        double bestIou = -1;
                        for (int b = 0; b < B; b++) {
                            double inter = Math.min(w, PRIORS[b][0]) * Math.min(h, PRIORS[b][1]);
                            double iou = inter / (w * h + PRIORS[b][0] * PRIORS[b][1] - inter);
                            if (iou > bestIou) {
                                bestIou = iou;
                                best = b;
                            }
                        }
                        truths.add(new double[]{lab[i][0][row][col], lab[i][1][row][col], lab[i][2][row][col],
                                lab[i][3][row][col], row, col, best});
                    }
                }
            }
            for (int b = 0; b < B; b++) {
                for (int row = 0; row < g; row++) {
                    for (int col = 0; col < g; col++) {
                        double[] z = new double[PER];
                        for (int k = 0; k < PER; k++) {
                            z[k] = x[i][b * PER + k][row][col];
                        }
                        double[] mine = null;
                        for (double[] t : truths) {
                            if (t[4] == row && t[5] == col && t[6] == b) {
                                mine = t;
                            }
                        }
                        if (mine != null) {
                            double w = mine[2] - mine[0], h = mine[3] - mine[1];
                            double scale = 2 - w * h / (g * g);
                            double ox = (mine[0] + mine[2]) / 2 - col, oy = (mine[1] + mine[3]) / 2 - row;
                            double dw = z[2] - Math.log(w / PRIORS[b][0]), dh = z[3] - Math.log(h / PRIORS[b][1]);
                            total += lambdaCoord * scale * (logLoss(z[0], ox) + logLoss(z[1], oy) + dw * dw + dh * dh);
                            total += lambdaObj * logLoss(z[4], 1);
                            for (int k = 0; k < C; k++) {
                                total += lambdaClass * logLoss(z[5 + k], lab[i][4 + k][row][col]);
                            }
                            continue;
                        }
                        double cx = col + sig(z[0]), cy = row + sig(z[1]);
                        double w = PRIORS[b][0] * Math.exp(z[2]), h = PRIORS[b][1] * Math.exp(z[3]);
                        double best = 0;
                        for (double[] t : truths) {
                            double iw = Math.max(0, Math.min(cx + w / 2, t[2]) - Math.max(cx - w / 2, t[0]));
                            double ih = Math.max(0, Math.min(cy + h / 2, t[3]) - Math.max(cy - h / 2, t[1]));
                            double inter = iw * ih;
                            best = Math.max(best, inter / (w * h + (t[2] - t[0]) * (t[3] - t[1]) - inter));
                        }
                        closest = Math.min(closest, Math.abs(best - threshold));
                        if (best > threshold) {
                            ignored++;
                        } else {
                            total += lambdaNoObj * logLoss(z[4], 0);
                        }
                    }
                }
            }
        }
        return new Reference(total / n, ignored, closest);
    }

    private static double sig(double z) {
        return 1 / (1 + Math.exp(-z));
    }

    /** Binary cross-entropy of sigmoid(z) against t, in its textbook form. */
    private static double logLoss(double z, double t) {
        double p = sig(z);
        return -(t * Math.log(p) + (1 - t) * Math.log(1 - p));
    }

    private static double[][][][] java(INDArray a) {
        long[] s = a.shape();
        double[][][][] out = new double[(int) s[0]][(int) s[1]][(int) s[2]][(int) s[3]];
        for (int i = 0; i < s[0]; i++) {
            for (int j = 0; j < s[1]; j++) {
                for (int k = 0; k < s[2]; k++) {
                    for (int l = 0; l < s[3]; l++) {
                        out[i][j][k][l] = a.getDouble(i, j, k, l);
                    }
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------- tests

    @Test
    void lossEqualsTheReferenceLoop() {
        INDArray x = input(DataType.DOUBLE, 1);
        INDArray l = labels(DataType.DOUBLE);
        Reference ref = reference(java(x), java(l), 1, 1, 1, 1, 0.5);
        assertTrue(ref.ignored() >= 3, "the case should have predictions in the ignore region: " + ref.ignored());
        double s = score(layer(builder().build(), DataType.DOUBLE), x, l);
        assertEquals(ref.loss(), s, 1e-10 * ref.loss());

        // non-default weights and threshold: each term is weighted as documented
        Yolo3OutputLayer conf = builder().lambdaCoord(2.5).lambdaObj(0.7).lambdaNoObj(0.3).lambdaClass(1.9).ignoreThreshold(0.9).build();
        Reference ref2 = reference(java(x), java(l), 2.5, 0.7, 0.3, 1.9, 0.9);
        assertEquals(ref2.loss(), score(layer(conf, DataType.DOUBLE), x, l), 1e-10 * ref2.loss());
        Reference noIgnore = reference(java(x), java(l), 1, 1, 1, 1, 1.0);
        assertEquals(0, noIgnore.ignored());
        assertEquals(noIgnore.loss(), score(layer(builder().ignoreThreshold(1).build(), DataType.DOUBLE), x, l), 1e-10 * noIgnore.loss());
        assertTrue(noIgnore.loss() > ref.loss());

        // float: the same within float precision; a minibatch without objects: only no-object terms
        assertEquals(ref.loss(), score(layer(builder().build(), DataType.FLOAT), x.castTo(DataType.FLOAT), l.castTo(DataType.FLOAT)),
                1e-5 * ref.loss());
        INDArray empty = Nd4j.zeros(DataType.DOUBLE, N, 4 + C, G, G);
        assertEquals(reference(java(x), java(empty), 1, 1, 1, 1, 0.5).loss(), score(layer(builder().build(), DataType.DOUBLE), x, empty), 1e-10);
    }

    /** Own central differences on every input element, double precision; the case includes ignored predictions. */
    @Test
    void gradientMatchesFiniteDifferences() {
        for (double threshold : new double[]{0.5, 1.0}) {
            INDArray x = input(DataType.DOUBLE, 2);
            INDArray l = labels(DataType.DOUBLE);
            Reference ref = reference(java(x), java(l), 1, 1, 1, 1, threshold);
            assertTrue(threshold == 1 || ref.closestToThreshold() > 1e-3, "no prediction may sit on the ignore threshold");
            assertEquals(threshold < 1, ref.ignored() >= 3, "ignored: " + ref.ignored());
            Yolo3OutputLayerImpl layer = layer(builder().lambdaCoord(1.5).lambdaNoObj(0.7).ignoreThreshold(threshold).build(), DataType.DOUBLE);
            layer.setInput(x, NO_WS);
            layer.setLabels(l);
            INDArray grad = layer.backpropGradient(null, NO_WS).getSecond().dup();
            double eps = 1e-6, worst = 0;
            for (long i = 0; i < x.length(); i++) {
                INDArray xp = x.dup(), xm = x.dup();
                xp.putScalar(i, x.getDouble(i) + eps);
                xm.putScalar(i, x.getDouble(i) - eps);
                // the layer's gradient is that of the summed loss; its score is the mean over N
                double numeric = N * (score(layer, xp, l) - score(layer, xm, l)) / (2 * eps);
                double analytic = grad.getDouble(i);
                double err = Math.abs(numeric - analytic) / Math.max(1e-6, Math.abs(numeric) + Math.abs(analytic));
                worst = Math.max(worst, err);
                assertTrue(err < 1e-5, "element " + i + ": numeric " + numeric + " vs analytic " + analytic);
            }
            assertTrue(worst < 1e-5);
        }
    }

    /** DL4J's gradient check on input -> 1x1 conv -> Yolo3OutputLayer (the layer inside a graph, the DL4J conventions). */
    @Test
    void graphGradientCheck() {
        DataType before = Nd4j.dataType();
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        try {
            ComputationGraph net = convAndYolo(DataType.DOUBLE, new NoOp(), 4);
            INDArray features = Nd4j.rand(DataType.DOUBLE, N, 4, G, G).subi(0.5).muli(2);
            boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(net)
                    .inputs(new INDArray[]{features}).labels(new INDArray[]{labels(DataType.DOUBLE)})
                    .epsilon(1e-6).maxRelError(1e-5).minAbsoluteError(1e-9).print(GradientCheckUtil.PrintMode.FAILURES_ONLY));
            assertTrue(ok);
        } finally {
            Nd4j.setDefaultDataTypes(before, before);
        }
    }

    /** input [N, 4, 3, 3] -> 1x1 conv (identity) -> Yolo3OutputLayer. */
    private static ComputationGraph convAndYolo(DataType dt, org.nd4j.linalg.learning.config.IUpdater updater, long seed) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(seed).dataType(dt).updater(updater)
                .weightInit(WeightInit.XAVIER).graphBuilder().addInputs("in")
                .setInputTypes(InputType.convolutional(G, G, 4))
                .addLayer("head", new ConvolutionLayer.Builder(1, 1).nOut(B * PER).activation(Activation.IDENTITY).build(), "in")
                .addLayer("yolo", builder().lambdaNoObj(0.5).ignoreThreshold(0.6).build(), "head")
                .setOutputs("yolo").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    @Test
    void jsonAndModelSerializerRoundTrip() throws Exception {
        for (DataType dt : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            ComputationGraph net = convAndYolo(dt, new org.nd4j.linalg.learning.config.Adam(1e-3), 5);
            INDArray features = Nd4j.rand(dt, N, 4, G, G);
            MultiDataSet mds = new MultiDataSet(features, labels(dt));
            net.fit(mds);   // a trained state, and the updater state in the file

            ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(net.getConfiguration().toJson());
            assertEquals(net.getConfiguration(), back);
            Yolo3OutputLayer y = (Yolo3OutputLayer) ((LayerVertex) back.getVertices().get("yolo")).getLayerConf().getLayer();
            assertEquals(Nd4j.create(PRIORS).castTo(y.getPriors().dataType()), y.getPriors());
            assertEquals(0.5, y.getLambdaNoObj());
            assertEquals(0.6, y.getIgnoreThreshold());

            File f = dir.resolve("net-" + dt + ".zip").toFile();
            ModelSerializer.writeModel(net, f, true);
            ComputationGraph restored = ModelSerializer.restoreComputationGraph(f, true);
            assertEquals(net.outputSingle(features), restored.outputSingle(features));
            assertEquals(net.score(mds), restored.score(mds), 0.0);
            assertEquals(dt, restored.outputSingle(features).dataType());
        }
    }

    /** The activated layout YoloDecoder reads: sigmoid x, y, prior x exp w, h, sigmoid objectness and classes. */
    @Test
    void activationLayout() {
        INDArray x = input(DataType.DOUBLE, 3);
        Yolo3OutputLayerImpl layer = layer(builder().build(), DataType.DOUBLE);
        INDArray out = layer.activate(x, false, NO_WS);
        for (int b = 0; b < B; b++) {
            for (int k = 0; k < PER; k++) {
                double z = x.getDouble(1, b * PER + k, 2, 1);
                double expected = k == 2 || k == 3 ? PRIORS[b][k - 2] * Math.exp(z) : sig(z);
                assertEquals(expected, out.getDouble(1, b * PER + k, 2, 1), 1e-12, "prior " + b + ", channel " + k);
            }
        }
    }

    /** backpropGradient keeps its score for the next computeScore only if input and labels are the same arrays. */
    @Test
    void scoreKeptFromBackpropOnlyForTheSameArrays() {
        INDArray x1 = input(DataType.DOUBLE, 4), x2 = input(DataType.DOUBLE, 5), l = labels(DataType.DOUBLE);
        Yolo3OutputLayerImpl layer = layer(builder().build(), DataType.DOUBLE);
        double s1 = reference(java(x1), java(l), 1, 1, 1, 1, 0.5).loss();
        double s2 = reference(java(x2), java(l), 1, 1, 1, 1, 0.5).loss();
        assertNotEquals(s1, s2);
        layer.setInput(x1, NO_WS);
        layer.setLabels(l);
        layer.backpropGradient(null, NO_WS);
        assertEquals(s1 + 0.25, layer.computeScore(0.25, true, NO_WS), 1e-10);   // kept, plus the regularisation term
        layer.backpropGradient(null, NO_WS);
        layer.setInput(x2, NO_WS);
        assertEquals(s2, layer.computeScore(0, true, NO_WS), 1e-10);           // new input: computed afresh
        layer.setInput(x1, NO_WS);
        layer.backpropGradient(null, NO_WS);
        layer.setLabels(l.dup());
        assertEquals(s1, layer.computeScore(0, true, NO_WS), 1e-10);
        INDArray perExample = layer.computeScoreForExamples(0, NO_WS);
        assertEquals(s1 * N, perExample.sumNumber().doubleValue(), 1e-10);
        assertEquals(List.of((long) N, 1L), List.of(perExample.size(0), perExample.size(1)));
    }

    @Test
    void wrongChannelCountIsReportedWithTheLayerName() {
        // at configuration time: 13 channels are not B*(5+C) for B = 2
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new NeuralNetConfiguration.Builder()
                .graphBuilder().addInputs("in").setInputTypes(InputType.convolutional(G, G, 4))
                .addLayer("head", new ConvolutionLayer.Builder(1, 1).nOut(13).build(), "in")
                .addLayer("yolo8", new Yolo3OutputLayer.Builder().priors(Nd4j.create(PRIORS)).build(), "head")
                .setOutputs("yolo8").build());
        assertTrue(e.getMessage().contains("Yolo3OutputLayer 'yolo8'") && e.getMessage().contains("13 channels"), e.getMessage());

        // at run time: 2*(5+3) channels, but the labels have C = 2
        Yolo3OutputLayerImpl layer = layer(builder().build(), DataType.DOUBLE);
        layer.setInput(Nd4j.zeros(DataType.DOUBLE, N, 16, G, G), NO_WS);
        layer.setLabels(labels(DataType.DOUBLE));
        IllegalStateException r = assertThrows(IllegalStateException.class, () -> layer.computeScore(0, true, NO_WS));
        assertTrue(r.getMessage().contains("Yolo3OutputLayer 'yolo'") && r.getMessage().contains("16 channels")
                && r.getMessage().contains("2*(5+2) = 14"), r.getMessage());

        layer.setInput(input(DataType.DOUBLE, 1), NO_WS);
        layer.setLabels(Nd4j.zeros(DataType.DOUBLE, N, 4 + C, G + 1, G));
        IllegalStateException s = assertThrows(IllegalStateException.class, () -> layer.computeScore(0, true, NO_WS));
        assertTrue(s.getMessage().contains("do not match the input"), s.getMessage());

        IllegalStateException p = assertThrows(IllegalStateException.class,
                () -> new Yolo3OutputLayer.Builder().priors(Nd4j.create(new double[][]{{1, 0}})).build());
        assertTrue(p.getMessage().contains("> 0"), p.getMessage());
        assertThrows(IllegalStateException.class, () -> new Yolo3OutputLayer.Builder().build());
        assertThrows(IllegalStateException.class, () -> builder().ignoreThreshold(1.5).build());
        assertFalse(builder().build().toString().isEmpty());
    }
}
