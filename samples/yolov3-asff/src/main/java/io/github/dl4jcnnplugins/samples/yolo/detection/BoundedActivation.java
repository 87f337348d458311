package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.BaseActivationFunction;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@code f(x) = b tanh(x / b)}: the identity near 0, smoothly bounded to (-b, b). Used on the YOLO heads so the
 * raw outputs that Yolo2OutputLayer feeds to exp() (box width and height) cannot explode: with b = 4 a box is at
 * most e^4 = 55 times its prior, objectness and class logits still reach sigmoid 0.018 .. 0.982. Without it,
 * single cells produced loss spikes of 10^3 - 10^4 (from a baseline of about 150) when training from scratch.
 */
public class BoundedActivation extends BaseActivationFunction {
    private double bound = 4.0;

    public BoundedActivation() {
    }

    public BoundedActivation(double bound) {
        this.bound = bound;
    }

    @Override
    public INDArray getActivation(INDArray in, boolean training) {
        INDArray t = Transforms.tanh(in.div(bound), false);
        return in.assign(t.muli(bound));
    }

    @Override
    public Pair<INDArray, INDArray> backprop(INDArray in, INDArray epsilon) {
        assertShape(in, epsilon);
        INDArray t = Transforms.tanh(in.div(bound), false);
        INDArray d = t.muli(t).rsubi(1.0);   // derivative of b tanh(x / b)
        in.assign(d.muli(epsilon));
        return new Pair<>(in, null);
    }

    public double getBound() {
        return bound;
    }

    public void setBound(double bound) {
        this.bound = bound;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BoundedActivation b && b.bound == bound;
    }

    @Override
    public int hashCode() {
        return Double.hashCode(bound);
    }

    @Override
    public String toString() {
        return "bounded(" + bound + ")";
    }
}
