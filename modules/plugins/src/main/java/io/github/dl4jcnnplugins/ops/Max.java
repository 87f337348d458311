package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Collections;
import java.util.List;

/**
 * Maximum over some dimensions of an NCHW {@code x} (CBAM's max branches: {@code [N, C, H, W] -> [N, C]} over the
 * pixels, {@code [N, 1, H, W]} over the channels); libnd4j's {@code reduce_max}.
 *
 * <p>The gradient goes to the first maximal element of each reduced slice, as PyTorch's {@code torch.max(x, dim)} and
 * {@code adaptive_max_pool2d} and libnd4j's {@code reduce_max_bp} do (ties matter: after a ReLU a pixel's channels
 * can all be 0). It is {@code ismax(x) * dL/dmax}, libnd4j's {@code ismax} marking that element: over the channels of
 * {@code [8, 256, 56, 56]} float (2 threads) 13 + 3 ms against 61 ms for {@code reduce_max_bp}.
 */
public class Max extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_max";

    static {
        register(OP_NAME, new Max());
    }

    /** For SameDiff's reflective re-creation only. */
    public Max() {
    }

    private Max(SameDiff sd, SDVariable x, boolean keepDims, int... dims) {
        super(sd, x);
        addBArgument(keepDims);
        addIArgument(dims);
    }

    /** Maximum of {@code x [N, C, H, W]} over its pixels: {@code [N, C]}. */
    public static SDVariable spatial(SameDiff sd, SDVariable x) {
        return new Max(sd, x, false, 2, 3).outputVariable();
    }

    /** Maximum of {@code x} over {@code dims} (ascending), which are kept with size 1 (e.g. {@code [N, 1, H, W]}). */
    public static SDVariable along(SameDiff sd, SDVariable x, int... dims) {
        return new Max(sd, x, true, dims).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "reduce_max";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        int[] dims = dims();
        return Collections.singletonList(FirstMax.mask(sameDiff, arg(), dims).mul(withReducedDims(grads.get(0), dims)));
    }

    /** libnd4j's {@code ismax} along given dimensions, in the input's data type: 1 at each slice's first maximum. */
    public static class FirstMax extends NativeAlias {
        /** Op name under which SameDiff re-creates this class; not a native op name. */
        public static final String OP_NAME = "dl4jcnnplugins_first_max";

        static {
            register(OP_NAME, new FirstMax());
        }

        /** For SameDiff's reflective re-creation only. */
        public FirstMax() {
        }

        private FirstMax(SameDiff sd, SDVariable x, int... dims) {
            super(sd, x);
            addIArgument(dims);
        }

        static SDVariable mask(SameDiff sd, SDVariable x, int... dims) {
            return new FirstMax(sd, x, dims).outputVariable();
        }

        @Override
        public String opName() {
            return OP_NAME;
        }

        @Override
        protected String nativeName() {
            return "ismax";
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException("ismax is piecewise constant; only used inside a gradient");
        }
    }
}
