package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Collections;
import java.util.List;

/**
 * Global average pooling {@code [N, C, H, W] -> [N, C]} (the "squeeze" of SE, CBAM's average branch, ASPP's image
 * pooling): libnd4j's {@code reduce_mean} over {@code (2, 3)}.
 *
 * <p>The gradient it returns is {@code dL/ds / (H W)} of shape {@code [N, C, 1, 1]}, not spread over the pixels:
 * SameDiff adds it to the gradient of {@code x}'s other consumers, a broadcast addition that spreads it for free.
 * <b>So {@code x} must also be used at full size elsewhere in the graph</b> (SE and CBAM gate {@code x}, ASPP convolves
 * it); the plug-in runtime rejects an input gradient whose shape is not the input's. Spreading it here cost a
 * {@code zeroslike}, an addition and a same-shape addition in SameDiff's accumulation (about 8 of SE's 58 ms).
 *
 * <p>SameDiff's own gradient of a mean is libnd4j's {@code reduce_mean_bp}: 13-24 ms on {@code [8, 256, 56, 56]} float
 * (2 threads), against ~1.5 ms for a broadcast addition of that size, and SE's op profile showed the addition that
 * accumulates its result into dL/dx at ~25 ms per call.
 */
public class SpatialMean extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_spatial_mean";

    static {
        register(OP_NAME, new SpatialMean());
    }

    /** For SameDiff's reflective re-creation only. */
    public SpatialMean() {
    }

    private SpatialMean(SameDiff sd, SDVariable x) {
        super(sd, x);
        addBArgument(false);      // drop the reduced dimensions: [N, C]
        addIArgument(2, 3);
    }

    /** Mean of {@code x [N, C, H, W]} over its pixels: {@code [N, C]}. */
    public static SDVariable of(SameDiff sd, SDVariable x) {
        return new SpatialMean(sd, x).outputVariable();
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
        SDVariable x = arg();
        SDVariable pixels = sizeProduct(x, 2, 3);
        return Collections.singletonList(sameDiff.expandDims(sameDiff.expandDims(grads.get(0).div(pixels), 2), 3));
    }
}
