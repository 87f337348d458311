package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.GradientNormalization;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.conf.layers.objdetect.BoundingBoxesDeserializer;
import org.deeplearning4j.nn.conf.memory.LayerMemoryReport;
import org.deeplearning4j.nn.conf.preprocessor.FeedForwardToCnnPreProcessor;
import org.deeplearning4j.nn.params.EmptyParamInitializer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.serde.jackson.shaded.NDArrayTextSerializer;
import org.nd4j.shade.jackson.databind.annotation.JsonDeserialize;
import org.nd4j.shade.jackson.databind.annotation.JsonSerialize;

import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * Configuration of a YOLOv3 output layer (Redmon &amp; Farhadi 2018, "YOLOv3: An Incremental Improvement",
 * arXiv:1804.02767): a drop-in replacement for DL4J's {@code Yolo2OutputLayer} with the YOLOv3 loss. The math lives
 * in {@link Yolo3Loss}, the DL4J runtime layer in {@link Yolo3OutputLayerImpl}.
 *
 * <p><b>Input</b>: the head's pre-activation output {@code [N, B*(5+C), H, W]} (NCHW); per prior b the channels
 * {@code b*(5+C) + 0..4+C} hold tx, ty, tw, th, the objectness logit and C class logits. <b>Labels</b>: the
 * Yolo2OutputLayer format {@code [N, 4+C, H, W]}: corners x1, y1, x2, y2 in grid units in the cell holding the box
 * centre and a one-hot class; all zeros = no object in that cell ({@link YoloBatches}). <b>Priors</b>
 * {@code [B, 2]}: width and height in grid units ({@link Anchors#priorsGridUnits(int)}).
 *
 * <p><b>Output</b> ({@code activate}, the layout {@link YoloDecoder} reads): sigmoid(tx), sigmoid(ty),
 * prior_w exp(tw), prior_h exp(th), sigmoid(tobj) and an independent sigmoid per class (YOLOv3 replaces YOLOv2's
 * softmax by logistic classifiers).
 *
 * <p><b>Loss</b>, summed over the minibatch and divided by N (the darknet / ultralytics YOLOv3 convention; DL4J's
 * gradients are the sums, its updater divides by N):
 * <ul>
 *   <li>each labelled cell has one responsible prior: the one (of this layer's B) whose shape best fits the true
 *       box (IoU with centres aligned);</li>
 *   <li>position: BCE between sigmoid(tx), sigmoid(ty) and the true centre offset in the cell; size: squared error
 *       between tw, th and log(w / prior_w), log(h / prior_h); both weighted by {@code 2 - w h / (H W)} (smaller
 *       boxes weigh more, as in darknet) and by {@link #getLambdaCoord() lambdaCoord};</li>
 *   <li>objectness: BCE with target 1 on the responsible prior ({@link #getLambdaObj() lambdaObj}), target 0 on all
 *       other predictions ({@link #getLambdaNoObj() lambdaNoObj}) except those whose decoded box overlaps any true
 *       box of the same image with IoU above {@link #getIgnoreThreshold() ignoreThreshold}: those get no
 *       objectness loss (YOLOv3's ignore rule; the mask is not differentiated);</li>
 *   <li>classes: BCE per class against the one-hot target on the responsible prior only
 *       ({@link #getLambdaClass() lambdaClass}).</li>
 * </ul>
 * The BCE terms use BCE-with-logits, {@code softplus(z) - t z} with a stable softplus, in the score and in the
 * gradient ({@code sigmoid(z) - t}). Position BCE against a soft target t does not reach 0 at its minimum
 * (the entropy of t is left in; it has no gradient).
 */
public class Yolo3OutputLayer extends Layer {
    @JsonSerialize(using = NDArrayTextSerializer.class)
    @JsonDeserialize(using = BoundingBoxesDeserializer.class)
    private INDArray priors;
    private double lambdaCoord = 1;
    private double lambdaObj = 1;
    private double lambdaNoObj = 1;
    private double lambdaClass = 1;
    private double ignoreThreshold = 0.5;

    /** For JSON. */
    private Yolo3OutputLayer() {
    }

    private Yolo3OutputLayer(Builder b) {
        super(b);
        this.priors = b.priors;
        this.lambdaCoord = b.lambdaCoord;
        this.lambdaObj = b.lambdaObj;
        this.lambdaNoObj = b.lambdaNoObj;
        this.lambdaClass = b.lambdaClass;
        this.ignoreThreshold = b.ignoreThreshold;
    }

    /** {@code Yolo3OutputLayer 'name'} (or without the name before the graph names the layer), for messages. */
    String describe() {
        return describe(layerName);
    }

    private static String describe(String name) {
        return "Yolo3OutputLayer" + (name == null ? "" : " '" + name + "'");
    }

    /** Number of priors B. */
    public int numPriors() {
        return (int) priors.size(0);
    }

    @Override
    public org.deeplearning4j.nn.api.Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> listeners,
                                                       int layerIndex, INDArray paramsView, boolean initializeParams,
                                                       DataType networkDataType) {
        Yolo3OutputLayerImpl layer = new Yolo3OutputLayerImpl(conf, networkDataType);
        layer.setListeners(listeners);
        layer.setIndex(layerIndex);
        layer.setParamsViewArray(paramsView);
        layer.setParamTable(initializer().init(conf, paramsView, initializeParams));
        layer.setConf(conf);
        return layer;
    }

    @Override
    public ParamInitializer initializer() {
        return EmptyParamInitializer.getInstance();
    }

    /** Same shape as the input; checks that it is NCHW with {@code B*(5+C)} channels for some C >= 1. */
    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        checkInputType(inputType);
        return inputType;
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        checkInputType(inputType);
    }

    private void checkInputType(InputType inputType) {
        if (inputType instanceof InputType.InputTypeConvolutionalFlat) {
            return;   // reshaped by the preprocessor below; channels are checked at run time
        }
        if (!(inputType instanceof InputType.InputTypeConvolutional c)) {
            throw new IllegalArgumentException(describe() + ": needs convolutional input [N, B*(5+C), H, W]; got " + inputType);
        }
        if (c.getFormat() != CNN2DFormat.NCHW) {
            throw new IllegalArgumentException(describe() + ": supports NCHW input only; got " + c.getFormat());
        }
        long ch = c.getChannels();
        int b = numPriors();
        if (ch % b != 0 || ch / b < 6) {
            throw new IllegalArgumentException(describe() + ": input has " + ch + " channels, but needs B*(5+C) with B = "
                    + b + " priors and C >= 1 classes (e.g. " + b * 6 + ", " + b * 7 + ", ...); set the nOut of the layer"
                    + " before it to " + b + "*(5+C)");
        }
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        if (inputType instanceof InputType.InputTypeConvolutionalFlat f) {
            return new FeedForwardToCnnPreProcessor(f.getHeight(), f.getWidth(), f.getDepth());
        }
        if (inputType.getType() != InputType.Type.CNN) {
            throw new IllegalArgumentException(describe() + ": needs convolutional input; got " + inputType);
        }
        return null;
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return null;   // no parameters
    }

    @Override
    public boolean isPretrainParam(String paramName) {
        return false;
    }

    @Override
    public GradientNormalization getGradientNormalization() {
        return GradientNormalization.None;
    }

    @Override
    public double getGradientNormalizationThreshold() {
        return 1.0;
    }

    @Override
    public LayerMemoryReport getMemoryReport(InputType inputType) {
        long values = inputType.arrayElementsPerExample();
        // rough: activated copy, objectness terms and the IoU work arrays, a few times the input
        return new LayerMemoryReport.Builder(layerName, Yolo3OutputLayer.class, inputType, inputType)
                .standardMemory(0, 0).workingMemory(0, values, 0, 4 * values).cacheMemory(0, 0).build();
    }

    public INDArray getPriors() {
        return priors;
    }

    public void setPriors(INDArray priors) {
        this.priors = priors;
    }

    public double getLambdaCoord() {
        return lambdaCoord;
    }

    public void setLambdaCoord(double lambdaCoord) {
        this.lambdaCoord = lambdaCoord;
    }

    public double getLambdaObj() {
        return lambdaObj;
    }

    public void setLambdaObj(double lambdaObj) {
        this.lambdaObj = lambdaObj;
    }

    public double getLambdaNoObj() {
        return lambdaNoObj;
    }

    public void setLambdaNoObj(double lambdaNoObj) {
        this.lambdaNoObj = lambdaNoObj;
    }

    public double getLambdaClass() {
        return lambdaClass;
    }

    public void setLambdaClass(double lambdaClass) {
        this.lambdaClass = lambdaClass;
    }

    public double getIgnoreThreshold() {
        return ignoreThreshold;
    }

    public void setIgnoreThreshold(double ignoreThreshold) {
        this.ignoreThreshold = ignoreThreshold;
    }

    @Override
    public Yolo3OutputLayer clone() {
        Yolo3OutputLayer c = (Yolo3OutputLayer) super.clone();
        c.priors = priors == null ? null : priors.dup();
        return c;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        return o instanceof Yolo3OutputLayer y && super.equals(o) && Objects.equals(priors, y.priors)
                && lambdaCoord == y.lambdaCoord && lambdaObj == y.lambdaObj && lambdaNoObj == y.lambdaNoObj
                && lambdaClass == y.lambdaClass && ignoreThreshold == y.ignoreThreshold;
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), priors, lambdaCoord, lambdaObj, lambdaNoObj, lambdaClass, ignoreThreshold);
    }

    @Override
    public String toString() {
        return describe() + "(priors=" + (priors == null ? "null" : Arrays.deepToString(priorArray(priors)))
                + ", lambdaCoord=" + lambdaCoord + ", lambdaObj=" + lambdaObj + ", lambdaNoObj=" + lambdaNoObj
                + ", lambdaClass=" + lambdaClass + ", ignoreThreshold=" + ignoreThreshold + ")";
    }

    /** The priors as {@code double[B][2]}. */
    static double[][] priorArray(INDArray priors) {
        return priors.castTo(DataType.DOUBLE).toDoubleMatrix();
    }

    /** Builder: {@link #priors(INDArray)} is required, everything else has the YOLOv3 default. */
    public static class Builder extends Layer.Builder<Builder> {
        private INDArray priors;
        private double lambdaCoord = 1;
        private double lambdaObj = 1;
        private double lambdaNoObj = 1;
        private double lambdaClass = 1;
        private double ignoreThreshold = 0.5;

        /** Required: {@code [B, 2]}, width and height of each prior in grid units of this layer (all > 0). */
        public Builder priors(INDArray priors) {
            this.priors = priors;
            return this;
        }

        /** Weight of the position and size terms (default 1). */
        public Builder lambdaCoord(double v) {
            this.lambdaCoord = v;
            return this;
        }

        /** Weight of the objectness term of responsible priors (default 1). */
        public Builder lambdaObj(double v) {
            this.lambdaObj = v;
            return this;
        }

        /** Weight of the objectness term of the other, not ignored, predictions (default 1). */
        public Builder lambdaNoObj(double v) {
            this.lambdaNoObj = v;
            return this;
        }

        /** Weight of the class term (default 1). */
        public Builder lambdaClass(double v) {
            this.lambdaClass = v;
            return this;
        }

        /**
         * Predictions whose box overlaps a true box with IoU above this get no no-object loss (default 0.5 as in
         * the YOLOv3 paper; darknet's cfgs use 0.7). 1 disables the rule.
         */
        public Builder ignoreThreshold(double v) {
            this.ignoreThreshold = v;
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public Yolo3OutputLayer build() {
            String who = describe(layerName);
            if (priors == null) {
                throw new IllegalStateException(who + ": priors are required (Builder.priors, [B, 2] in grid units)");
            }
            if (priors.rank() != 2 || priors.size(0) < 1 || priors.size(1) != 2) {
                throw new IllegalStateException(who + ": priors must have shape [B, 2]; got " + Arrays.toString(priors.shape()));
            }
            for (double[] p : priorArray(priors)) {
                if (!(p[0] > 0) || !(p[1] > 0) || !Double.isFinite(p[0]) || !Double.isFinite(p[1])) {
                    throw new IllegalStateException(who + ": prior sizes must be finite and > 0; got " + Arrays.toString(p));
                }
            }
            checkWeight(who, "lambdaCoord", lambdaCoord);
            checkWeight(who, "lambdaObj", lambdaObj);
            checkWeight(who, "lambdaNoObj", lambdaNoObj);
            checkWeight(who, "lambdaClass", lambdaClass);
            if (!(ignoreThreshold >= 0 && ignoreThreshold <= 1)) {
                throw new IllegalStateException(who + ": ignoreThreshold must be in [0, 1]; got " + ignoreThreshold);
            }
            return new Yolo3OutputLayer(this);
        }

        private static void checkWeight(String who, String name, double v) {
            if (!(v >= 0) || !Double.isFinite(v)) {
                throw new IllegalStateException(who + ": " + name + " must be finite and >= 0; got " + v);
            }
        }
    }
}
