package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Collections;
import java.util.List;

/**
 * Mean over some dimensions of an NCHW {@code x}: global average pooling {@code [N, C, H, W] -> [N, C]} (the "squeeze"
 * of SE, CBAM's average branch, ASPP's image pooling) and CBAM's channel-wise mean map {@code [N, 1, H, W]};
 * libnd4j's {@code reduce_mean}.
 *
 * <p>The gradient it returns is {@code dL/dmean / n} with the reduced dimensions of size 1 ({@code [N, C, 1, 1]},
 * {@code [N, 1, H, W]}), not spread over them: SameDiff adds it to the gradient of {@code x}'s other consumers, a
 * broadcast addition that spreads it for free. <b>So {@code x} must also be used at full size elsewhere in the
 * graph</b> (SE and CBAM gate {@code x}, ASPP convolves it); the plug-in runtime rejects an input gradient whose shape
 * is not the input's. libnd4j's {@code reduce_mean_bp} took 13-24 ms on {@code [8, 256, 56, 56]} float (2 threads),
 * against ~1.5 ms for a broadcast addition of that size; spreading the gradient here cost a {@code zeroslike}, an
 * addition and a same-shape addition in SameDiff's accumulation (about 8 of SE's 58 ms).
 */
public class Mean extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_mean";

    static {
        register(OP_NAME, new Mean());
    }

    /** For SameDiff's reflective re-creation only. */
    public Mean() {
    }

    private Mean(SameDiff sd, SDVariable x, boolean keepDims, int... dims) {
        super(sd, x);
        addBArgument(keepDims);
        addIArgument(dims);
    }

    /** Mean of {@code x [N, C, H, W]} over its pixels: {@code [N, C]}. */
    public static SDVariable spatial(SameDiff sd, SDVariable x) {
        return new Mean(sd, x, false, 2, 3).outputVariable();
    }

    /** Mean of {@code x} over {@code dims} (ascending), which are kept with size 1 (e.g. {@code [N, 1, H, W]}). */
    public static SDVariable along(SameDiff sd, SDVariable x, int... dims) {
        return new Mean(sd, x, true, dims).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "reduce_mean";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        int[] dims = dims();
        return Collections.singletonList(withReducedDims(grads.get(0).div(sizeProduct(sameDiff, arg(), dims)), dims));
    }
}
