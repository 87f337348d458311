package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * Element-wise product {@code a * b} for plug-in graphs, with a gradient built from forward products and sums.
 *
 * <p>SameDiff differentiates its {@code multiply} through libnd4j's {@code multiply_bp}, which in 1.0.0-M2.1 is
 * 10-50x slower than the work it does. Measured on one thread, {@code [16, 32, 16, 16]} float: same shapes 5.8 ms
 * ({@code multiply} itself: 0.42 ms), {@code b} of shape {@code [1, C, 1, 1]} 20.6 ms, {@code [N, 1, H, W]} 12.7 ms;
 * it was the largest single cost of training ASFF and of every BatchNorm inside a plug-in. Here the gradient is
 * {@code dL/da = g * b} and {@code dL/db = sum(g * a)} over the dimensions along which {@code b} is broadcast (the
 * caller names them: shapes are not reliably known while the graph is being built); for a per-channel {@code b} that
 * sum is one {@code dot} reduction of the pair. The forward pass is libnd4j's
 * {@code multiply} kernel (see {@link NativeAlias}).
 */
public class Mul extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_mul";

    static {
        register(OP_NAME, new Mul());
    }

    /** For SameDiff's reflective re-creation only. */
    public Mul() {
    }

    private Mul(SameDiff sd, SDVariable a, SDVariable b, int[] broadcastDims) {
        super(sd, a, b);
        for (int d : broadcastDims) {
            addIArgument(d);   // ignored by the kernel; kept for the gradient
        }
    }

    /** {@code a * b} for operands of the same shape. */
    public static SDVariable same(SameDiff sd, SDVariable a, SDVariable b) {
        return of(sd, a, b);
    }

    /**
     * {@code a * b} where {@code b} has {@code a}'s shape except size 1 in {@code broadcastDims}, e.g. a per-channel
     * scale {@code [1, C, 1, 1]} with {@code broadcastDims = 0, 2, 3}, a per-sample channel gate {@code [N, C, 1, 1]}
     * with {@code 2, 3} or a per-pixel weight {@code [N, 1, H, W]} with {@code 1}.
     */
    public static SDVariable of(SameDiff sd, SDVariable a, SDVariable b, int... broadcastDims) {
        return new Mul(sd, a, b, broadcastDims).outputVariable();
    }

    /**
     * {@code v [N, C, 1, 1]} repeated over {@code height x width}: {@code [N, C, height, width]} (ASPP's image-pooling
     * branch), as a product with a constant of ones, whose gradient is the sum of dL/dout over the pixels.
     */
    public static SDVariable spread(SameDiff sd, SDVariable v, long height, long width) {
        SDVariable ones = sd.constant(Nd4j.ones(v.dataType(), 1, 1, height, width));
        // The ones are broadcast too (against N and C): their "gradient" is never requested, a constant has none.
        return of(sd, ones, v, 2, 3);
    }

    /**
     * {@code v [1, d1, ..., dk]} repeated along axis 0 as many times as {@code like} has rows (its run-time batch
     * size): {@code [N, d1, ..., dk]}, so that a shared matrix can enter a batched matrix product (libnd4j's
     * {@code matmul} does not broadcast its batch axis). Like {@link #spread}, a product with ones (here made at run
     * time by {@code fill}); the gradient of {@code v} is the sum over the batch. (libnd4j's {@code tile} took ~95 ms to
     * repeat a {@code [1, 256, 4608]} float matrix twice, the broadcast product ~2 ms; SameDiff's {@code tile} with
     * run-time repeats has no usable gradient in M2.1.)
     */
    public static SDVariable repeatAlongBatch(SameDiff sd, SDVariable v, SDVariable like, int rank) {
        long[] shape = new long[rank - 1];
        Arrays.fill(shape, 1L);
        SDVariable n = sd.shape(like).get(SDIndex.interval(0, 1));
        SDVariable onesShape = sd.concat(0, n, sd.constant(Nd4j.createFromArray(shape).castTo(DataType.INT64)));
        return of(sd, sd.fill(onesShape, v.dataType(), 1.0), v, 0);
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
        SDVariable g = grads.get(0);
        SDVariable a = arg(0);
        SDVariable b = arg(1);
        SDVariable ga = g.mul(b);
        int[] dims = dims();
        SDVariable gb;
        if (dims.length == 0) {
            gb = g.mul(a);
        } else if (a.isConstant()) {
            // spread(): a is all ones, so dL/db is the sum of g (and a constant gets no gradient of its own)
            gb = g.sum(true, dims);
        } else if (reducesPixels(dims)) {
            // sum(g * a) over the pixels (and the batch) as one reduction of the pair: libnd4j's dot reads g and a once
            // instead of writing and re-reading their product (8x256x56x56 float, 2 threads: 5.4 vs 6.9 ms over (2, 3),
            // 4.6 vs 10.0 ms over (0, 2, 3)); over other dimensions it measured slower than the product and sum.
            gb = sameDiff.dot(g, a, dims).reshape(sameDiff.shape(b));
        } else {
            gb = g.mul(a).sum(true, dims);
        }
        return Arrays.asList(ga, gb);
    }

    /** {@code (2, 3)} or {@code (0, 2, 3)}: b is per (sample and) channel of an NCHW a. */
    private static boolean reducesPixels(int[] dims) {
        return Arrays.equals(dims, new int[] {2, 3}) || Arrays.equals(dims, new int[] {0, 2, 3});
    }
}
