package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * {@code v [1, ...]} repeated along axis 0 as many times as {@code like} has rows (its run-time batch size), so that a
 * shared matrix can enter a batched matrix product (libnd4j's {@code matmul} does not broadcast its batch axis). The
 * forward pass is libnd4j's broadcasting {@code multiply} of {@code [N, 1, ..., 1]} ones by {@code v}; the gradient is
 * the sum over axis 0. (libnd4j's {@code tile} took ~95 ms to repeat a {@code [1, 256, 4608]} float matrix twice,
 * the broadcast product ~2 ms; and SameDiff's {@code tile} with run-time repeats has no usable gradient in M2.1.)
 */
public class BatchRepeat extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_batch_repeat";

    static {
        register(OP_NAME, new BatchRepeat());
    }

    /** For SameDiff's reflective re-creation only. */
    public BatchRepeat() {
    }

    private BatchRepeat(SameDiff sd, SDVariable ones, SDVariable v) {
        super(sd, ones, v);
    }

    /**
     * {@code v} ({@code [1, d1, ..., dk]}) repeated to {@code [N, d1, ..., dk]}, {@code N} = {@code like.shape[0]}.
     */
    public static SDVariable of(SameDiff sd, SDVariable v, SDVariable like, int rank) {
        long[] ones = new long[rank - 1];
        java.util.Arrays.fill(ones, 1L);
        SDVariable n = sd.shape(like).get(SDIndex.interval(0, 1));
        SDVariable shape = sd.concat(0, n, sd.constant(Nd4j.createFromArray(ones).castTo(DataType.INT64)));
        return new BatchRepeat(sd, sd.fill(shape, v.dataType(), 1.0), v).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "multiply";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        return List.of(sameDiff.zerosLike(arg(0)), grads.get(0).sum(true, 0));
    }
}
