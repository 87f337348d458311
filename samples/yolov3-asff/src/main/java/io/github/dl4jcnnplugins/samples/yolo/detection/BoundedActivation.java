package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.BaseActivationFunction;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code f(x) = b tanh(x / b)} on the box width and height logits of a YOLO head, the identity on every other
 * channel. The head's channels come in groups of {@code period = 5 + C} per prior (x, y, w, h, confidence, C class
 * logits, as Yolo3OutputLayer reads them); channels 2 and 3 of each group are the ones Yolo3OutputLayer feeds to
 * exp(), so bounding them keeps a box within e^b times its prior. Without it, single cells produced loss spikes of
 * 10^3 - 10^4 (from a baseline of about 150) when training from scratch.
 *
 * <p>Only w and h are bounded on purpose: bounding the confidence logit as well (what {@code period = 0} does:
 * every channel) creates a trap. The no-object loss drives almost every confidence logit towards minus
 * infinity, where the derivative of the tanh vanishes, and the responsible boxes can no longer climb out: measured
 * on the default data, held-out mAP@0.5 stayed at 0.02 after 300 minibatches although half the true boxes had a
 * prediction with IoU above 0.5, ranked below about 40 others by score.
 */
public class BoundedActivation extends BaseActivationFunction {
    private double bound = 4.0;
    private int period;

    public BoundedActivation() {
    }

    /** Bounds every channel. */
    public BoundedActivation(double bound) {
        this(bound, 0);
    }

    /** Bounds channels 2 and 3 of every group of {@code period} channels ({@code period = 0}: every channel). */
    public BoundedActivation(double bound, int period) {
        if (!(bound > 0) || period < 0 || (period > 0 && period < 4)) {
            throw new IllegalArgumentException("BoundedActivation: need bound > 0 and period 0 (all channels) or >= 4; got bound="
                    + bound + ", period=" + period);
        }
        this.bound = bound;
        this.period = period;
    }

    /** The bounded parts of {@code x}: all of it, or channels 2..3 of each group along dimension 1. */
    private List<INDArray> bounded(INDArray x) {
        if (period == 0) {
            return List.of(x);
        }
        if (x.rank() < 2 || x.size(1) % period != 0) {
            throw new IllegalStateException("BoundedActivation with period " + period + ": expected [N, k*" + period
                    + ", ...] channels, got shape " + java.util.Arrays.toString(x.shape()));
        }
        List<INDArray> parts = new ArrayList<>();
        for (long g = 0; g < x.size(1); g += period) {
            INDArrayIndex[] idx = new INDArrayIndex[x.rank()];
            java.util.Arrays.fill(idx, NDArrayIndex.all());
            idx[1] = NDArrayIndex.interval(g + 2, g + 4);
            parts.add(x.get(idx));
        }
        return parts;
    }

    @Override
    public INDArray getActivation(INDArray in, boolean training) {
        for (INDArray p : bounded(in)) {
            p.assign(Transforms.tanh(p.div(bound), false).muli(bound));
        }
        return in;
    }

    @Override
    public Pair<INDArray, INDArray> backprop(INDArray in, INDArray epsilon) {
        assertShape(in, epsilon);
        INDArray grad = epsilon.dup();
        List<INDArray> ins = bounded(in);
        List<INDArray> grads = bounded(grad);
        for (int i = 0; i < ins.size(); i++) {
            INDArray t = Transforms.tanh(ins.get(i).div(bound), false);
            grads.get(i).muli(t.muli(t).rsubi(1.0));   // derivative of b tanh(x / b)
        }
        in.assign(grad);
        return new Pair<>(in, null);
    }

    public double getBound() {
        return bound;
    }

    public void setBound(double bound) {
        this.bound = bound;
    }

    public int getPeriod() {
        return period;
    }

    public void setPeriod(int period) {
        this.period = period;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BoundedActivation b && b.bound == bound && b.period == period;
    }

    @Override
    public int hashCode() {
        return 31 * Double.hashCode(bound) + period;
    }

    @Override
    public String toString() {
        return "bounded(" + bound + (period > 0 ? ", wh of every " + period : "") + ")";
    }
}
