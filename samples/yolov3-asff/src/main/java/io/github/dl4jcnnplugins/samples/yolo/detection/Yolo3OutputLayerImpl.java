package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.layers.IOutputLayer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.AbstractLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * The DL4J runtime layer of {@link Yolo3OutputLayer} (YOLOv3, Redmon &amp; Farhadi 2018, arXiv:1804.02767): input
 * and label checks, workspaces and the score bookkeeping around {@link Yolo3Loss}.
 *
 * <p><b>One loss evaluation per training iteration.</b> {@code ComputationGraph.computeGradientAndScore()} (DL4J
 * 1.0.0-M2.1) first runs {@link #backpropGradient} on every output layer and then asks each for
 * {@link #computeScore} with the same input and labels. {@code backpropGradient} computes the loss together with
 * the gradient and keeps the score; the next {@code computeScore} returns it if the layer still holds the very same
 * input and label arrays (same objects), instead of computing the loss again. The kept score is used once:
 * any other {@code computeScore} (e.g. {@code ComputationGraph.score(MultiDataSet)}, which runs no backward pass)
 * computes it afresh. (Changing the input array in place between the two calls would go unnoticed; DL4J does
 * not do that.)
 *
 * <p>Score: sum of the per-example losses / N + the network's regularisation term; gradient: d(sum of the
 * per-example losses)/d(input), as DL4J's own output layers (the updater divides by the minibatch size).
 */
public class Yolo3OutputLayerImpl extends AbstractLayer<Yolo3OutputLayer> implements IOutputLayer {
    private static final Gradient NO_PARAMETERS = new DefaultGradient();

    private INDArray labels;
    private double score;
    /** Loss (without regularisation) kept by backpropGradient for the next computeScore, with the arrays it was computed from. */
    private double keptScore;
    private INDArray keptInput;
    private INDArray keptLabels;

    public Yolo3OutputLayerImpl(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        checkInput();
        INDArray out = workspaceMgr.createUninitialized(ArrayType.ACTIVATIONS, input.dataType(), input.shape(), 'c');
        return Yolo3Loss.activate(input, Yolo3OutputLayer.priorArray(layerConf().getPriors()), out);
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        INDArray labels = checkedLabels();
        INDArray grad = workspaceMgr.create(ArrayType.ACTIVATION_GRAD, input.dataType(), input.shape(), 'c');
        Yolo3Loss.Result r = Yolo3Loss.compute(layerConf(), input, labels, grad);
        keptScore = r.sum() / input.size(0);
        keptInput = input;
        keptLabels = this.labels;
        return new Pair<>(NO_PARAMETERS, grad);
    }

    @Override
    public double computeScore(double fullNetRegTerm, boolean training, LayerWorkspaceMgr workspaceMgr) {
        double loss;
        if (keptInput != null && keptInput == input && keptLabels == labels) {
            loss = keptScore;
        } else {
            loss = Yolo3Loss.compute(layerConf(), input, checkedLabels(), null).sum() / input.size(0);
        }
        forgetKeptScore();
        score = loss + fullNetRegTerm;
        return score;
    }

    @Override
    public INDArray computeScoreForExamples(double fullNetRegTerm, LayerWorkspaceMgr workspaceMgr) {
        double[] perExample = Yolo3Loss.compute(layerConf(), input, checkedLabels(), null).perExample();
        INDArray out = Nd4j.create(perExample, new long[]{perExample.length, 1}).castTo(input.dataType()).addi(fullNetRegTerm);
        return workspaceMgr.leverageTo(ArrayType.ACTIVATIONS, out);
    }

    /** The labels in the input's data type, after checking both shapes. */
    private INDArray checkedLabels() {
        assertInputSet(true);
        String who = layerConf().describe();
        if (labels == null) {
            throw new IllegalStateException(who + ": no labels set; labels are [N, 4+C, H, W] (YoloBatches)");
        }
        if (labels.rank() != 4) {
            throw new IllegalStateException(who + ": labels must be [N, 4+C, H, W]; got shape " + Arrays.toString(labels.shape()));
        }
        checkInput();
        long b = layerConf().numPriors(), c = labels.size(1) - 4;
        long[] in = input.shape(), lab = labels.shape();
        if (c < 1 || lab[0] != in[0] || lab[2] != in[2] || lab[3] != in[3]) {
            throw new IllegalStateException(who + ": labels " + Arrays.toString(lab) + " do not match the input "
                    + Arrays.toString(in) + "; need [N, 4+C, H, W] with the input's N, H, W and C >= 1");
        }
        if (in[1] != b * (5 + c)) {
            throw new IllegalStateException(who + ": input has " + in[1] + " channels but needs B*(5+C) = " + b + "*(5+" + c
                    + ") = " + b * (5 + c) + " (B = " + b + " priors, C = " + c + " classes from the labels "
                    + Arrays.toString(lab) + "); set the nOut of the layer before it to " + b * (5 + c));
        }
        return labels.castTo(input.dataType());
    }

    private void checkInput() {
        long b = layerConf().numPriors();
        if (input.rank() != 4 || input.size(1) % b != 0 || input.size(1) / b < 6) {
            throw new IllegalStateException(layerConf().describe() + ": input must be [N, B*(5+C), H, W] with B = " + b
                    + " priors and C >= 1 classes; got shape " + Arrays.toString(input.shape()));
        }
    }

    private void forgetKeptScore() {
        keptInput = null;
        keptLabels = null;
    }

    @Override
    public void setLabels(INDArray labels) {
        this.labels = labels;
    }

    @Override
    public INDArray getLabels() {
        return labels;
    }

    @Override
    public boolean needsLabels() {
        return true;
    }

    @Override
    public double score() {
        return score;
    }

    @Override
    public void clear() {
        super.clear();
        labels = null;
        forgetKeptScore();
    }

    @Override
    public Pair<Gradient, Double> gradientAndScore() {
        return new Pair<>(gradient(), score());
    }

    @Override
    public void computeGradientAndScore(LayerWorkspaceMgr workspaceMgr) {
        throw new UnsupportedOperationException(layerConf().describe() + ": train it inside a ComputationGraph or MultiLayerNetwork");
    }

    @Override
    public Layer clone() {
        throw new UnsupportedOperationException("Not supported (DL4J clones networks through their configuration)");
    }

    @Override
    public boolean isPretrainLayer() {
        return false;
    }

    @Override
    public void clearNoiseWeightParams() {
        // no parameters
    }

    @Override
    public double f1Score(DataSet data) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public double f1Score(INDArray examples, INDArray labels) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public int numLabels() {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public void fit(DataSetIterator iter) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public int[] predict(INDArray examples) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public List<String> predict(DataSet dataSet) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public void fit(INDArray examples, INDArray labels) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public void fit(DataSet data) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }

    @Override
    public void fit(INDArray examples, int[] labels) {
        throw new UnsupportedOperationException("Not supported for detection output");
    }
}
