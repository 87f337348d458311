package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Per-channel batch mean and biased variance of {@code x [N, C, H, W]} over {@code (N, H, W)}, both {@code [1, C, 1, 1]}:
 * libnd4j's {@code moments} kernel, with the gradient written out:
 * {@code dL/dx = (dL/dmean + 2 (x - mean) dL/dvar) / M}, {@code M = N H W}, computed as {@code x * a + b} with per-channel
 * {@code a = 2 dL/dvar / M}, {@code b = dL/dmean / M - a * mean} (two broadcast passes over {@code x}; {@code a} and
 * {@code b} from one host op where {@link HostOp#usableIn} allows, {@link BatchNormGrads}).
 *
 * <p>SameDiff's own gradients of a mean and a variance go through libnd4j's {@code reduce_mean_bp} /
 * {@code reduce_variance_bp} (13 ms for one {@code reduce_mean_bp} on {@code [8, 128, 56, 56]} float, 2 threads,
 * against ~1.2 ms for a broadcast product of that size), and a training BatchNorm built from reductions and
 * products needed several of them per pass.
 */
public class BatchMoments extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_moments";

    static {
        register(OP_NAME, new BatchMoments());
    }

    /** For SameDiff's reflective re-creation only. */
    public BatchMoments() {
    }

    private BatchMoments(SameDiff sd, SDVariable x) {
        super(sd, x);
        addBArgument(true);       // keep dimensions: [1, C, 1, 1]
        addIArgument(0, 2, 3);
    }

    /** {@code {mean, variance}} of {@code x [N, C, H, W]} per channel, each {@code [1, C, 1, 1]}. */
    public static SDVariable[] of(SameDiff sd, SDVariable x) {
        if (HostOp.usableIn(sd, x.dataType())) {
            return ChannelStats.moments(sd, x);
        }
        return new BatchMoments(sd, x).outputVariables();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "moments";
    }

    @Override
    public int getNumOutputs() {
        return 2;
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> dataTypes) {
        return Arrays.asList(dataTypes.get(0), dataTypes.get(0));
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        return Collections.singletonList(gradient(sameDiff, arg(), outputVariables()[0], grads.get(0), grads.get(1)));
    }

    /** {@code dL/dx = x a + b} for the moments {@code mean} of {@code x} and their gradients (the class comment). */
    static SDVariable gradient(SameDiff sd, SDVariable x, SDVariable mean, SDVariable gradMean, SDVariable gradVar) {
        SDVariable a;
        SDVariable b;
        if (HostOp.usableIn(sd, x.dataType())) {
            SDVariable[] ab = new BatchNormGrads.Moments(sd, gradMean, gradVar, mean, x).outputVariables();
            a = ab[0];
            b = ab[1];
        } else {
            SDVariable count = sizeProduct(sd, x, 0, 2, 3);   // M = N * H * W
            a = gradVar.mul(2.0).div(count);
            b = gradMean.div(count).sub(a.mul(mean));
        }
        return Mul.of(sd, x, a, 0, 2, 3).add(b);
    }
}
