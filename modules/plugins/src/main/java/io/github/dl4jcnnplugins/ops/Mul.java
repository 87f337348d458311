package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
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
 * caller names them: shapes are not reliably known while the graph is being built). The forward pass is libnd4j's
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
        SDVariable ga = g.mul(arg(1));
        SDVariable gb = g.mul(arg(0));
        int[] dims = Arrays.stream(iArgs()).mapToInt(Math::toIntExact).toArray();
        return Arrays.asList(ga, dims.length > 0 ? gb.sum(true, dims) : gb);
    }
}
