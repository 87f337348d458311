package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.List;

/**
 * libnd4j's {@code im2col}: the patches of {@code x [N, C, H, W]} that a convolution reads,
 * {@code [N, C, kH, kW, outH, outW]} (zeros where a patch leaves the image), with {@code im2col_bp} (the matching
 * {@code col2im}: each patch value added back to the pixel it came from) as its gradient.
 *
 * <p>SameDiff's own {@code Im2col} keeps its hyper-parameters in a config object that does not survive SameDiff's
 * re-creation of ops by name when it builds the gradient function; here they are the op's integer arguments
 * ({@code kH, kW, sH, sW, pH, pW, dH, dW, 0}), which do (see {@link NativeAlias}).
 */
public class Im2Col extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_im2col";

    static {
        register(OP_NAME, new Im2Col());
        register(Backward.OP_NAME, new Backward());
    }

    /** For SameDiff's reflective re-creation only. */
    public Im2Col() {
    }

    private Im2Col(SameDiff sd, SDVariable x, long[] args) {
        super(sd, x);
        addIArgument(args);
    }

    /** The patches of {@code x} that a convolution with {@code spec} (groups ignored) reads. */
    public static SDVariable of(SameDiff sd, SDVariable x, Conv.Spec spec) {
        return new Im2Col(sd, x, new long[]{spec.kH(), spec.kW(), spec.sH(), spec.sW(), spec.pH(), spec.pW(),
                spec.dH(), spec.dW(), 0}).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "im2col";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        return List.of(new Backward(sameDiff, arg(0), grads.get(0), iArgs()).outputVariable());
    }

    /** {@code im2col_bp(x, dL/dPatches)} = {@code dL/dx}. */
    public static class Backward extends NativeAlias {
        /** Op name under which SameDiff re-creates this class; not a native op name. */
        public static final String OP_NAME = "dl4jcnnplugins_im2col_bp";

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable x, SDVariable g, long[] args) {
            super(sd, x, g);
            addIArgument(args);
        }

        @Override
        public String opName() {
            return OP_NAME;
        }

        @Override
        protected String nativeName() {
            return "im2col_bp";
        }
    }
}
