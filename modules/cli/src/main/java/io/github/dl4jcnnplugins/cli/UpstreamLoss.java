package io.github.dl4jcnnplugins.cli;

import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.lossfunctions.ILossFunction;

/**
 * The "loss" whose gradient with respect to the network output is the labels array: {@code L = sum(labels * out)}.
 * With the labels set to a fixed upstream gradient, DL4J's training path ({@code computeGradientAndScore}) runs
 * exactly the forward pass and the backward pass for that upstream gradient, as {@code bench_torch.py}'s
 * {@code out.backward(upstream)} does, with the workspaces DL4J uses when it trains.
 */
final class UpstreamLoss implements ILossFunction {

    @Override
    public double computeScore(INDArray labels, INDArray preOutput, IActivation activationFn, INDArray mask, boolean average) {
        return labels.mul(preOutput).sumNumber().doubleValue();
    }

    @Override
    public INDArray computeScoreArray(INDArray labels, INDArray preOutput, IActivation activationFn, INDArray mask) {
        return labels.mul(preOutput);
    }

    @Override
    public INDArray computeGradient(INDArray labels, INDArray preOutput, IActivation activationFn, INDArray mask) {
        return labels.dup();
    }

    @Override
    public Pair<Double, INDArray> computeGradientAndScore(INDArray labels, INDArray preOutput, IActivation activationFn,
                                                          INDArray mask, boolean average) {
        return new Pair<>(computeScore(labels, preOutput, activationFn, mask, average),
                computeGradient(labels, preOutput, activationFn, mask));
    }

    @Override
    public String name() {
        return "upstream";
    }
}
