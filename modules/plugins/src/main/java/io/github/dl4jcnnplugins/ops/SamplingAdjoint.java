package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ops.impl.controlflow.compat.StopGradient;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * The image gradient of bilinear sampling as two matrix-shaped steps instead of a scatter-add. In the forward pass
 * the op passes {@code out} through unchanged; in the backward pass it also sends the upstream gradient {@code g} of
 * {@code out [N, C, P]} (the samples of {@code x [N, C, H, W]} at pixel coordinates {@code (py, px) [N, P]}) to
 * {@code x} as the adjoint of the sampling:
 * <pre>
 *   ky[n, y, p] = max(0, 1 - |y - py[n, p]|),  kx[n, p, x] = max(0, 1 - |x - px[n, p]|)   (bilinear hats; pixels
 *                                                                                           outside do not exist)
 *   dL/dx[n, c, y, x] = sum_p g[n, c, p] ky[n, y, p] kx[n, p, x]
 *                     = ( (g[n, c, 1, p] * ky[n, 1, y, p]) as [C H, P] ) x kx[n] [P, W]   (one batched product)
 * </pre>
 * Use: {@code out = adjoint(sample(stopGradient(x), py, px), x, py, px)}: the sampling itself (its value and the
 * coordinates' gradient) comes from the gather path, which then never runs its scatter-add (nothing asks for the
 * gradient of the stopped input); the coordinates get no gradient from here. Cost {@code N C H W P} multiply-adds
 * in the backward pass: for the spatial transformer's small images (65,536 points of {@code 3 x 64 x 64}: 0.8 GMAC)
 * instead of libnd4j's row-by-row {@code scatter_add} (~100-120 ms there).
 */
public class SamplingAdjoint extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_sampling_adjoint";

    static {
        register(OP_NAME, new SamplingAdjoint());
    }

    /** For SameDiff's reflective re-creation only. */
    public SamplingAdjoint() {
    }

    private SamplingAdjoint(SameDiff sd, SDVariable out, SDVariable x, SDVariable py, SDVariable px, long channels,
                            long height, long width, long points) {
        super(sd, out, x, py, px);
        addIArgument(channels, height, width, points);
    }

    /**
     * {@code out} (the samples {@code [N, C, P]} of {@code stopGradient(x)} at {@code (py, px)}), whose gradient also
     * reaches {@code x} as described above.
     */
    public static SDVariable of(SameDiff sd, SDVariable out, SDVariable x, SDVariable py, SDVariable px,
                                long channels, long height, long width, long points) {
        return new SamplingAdjoint(sd, out, x, py, px, channels, height, width, points).outputVariable();
    }

    /** {@code x} for the gather path: same values, no gradient. */
    public static SDVariable stopped(SameDiff sd, SDVariable x) {
        return new StopGradient(sd, x).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "identity";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        SDVariable g = grads.get(0);
        SDVariable py = arg(2);
        SDVariable px = arg(3);
        long[] a = iArgs();
        long c = a[0], h = a[1], w = a[2], p = a[3];
        SDVariable ky = hat(sameDiff, py.reshape(-1, 1, p), sameDiff.constant(
                Nd4j.arange(h).castTo(py.dataType()).reshape(1, h, 1)));                        // [N, H, P]
        SDVariable kx = hat(sameDiff, px.reshape(-1, p, 1), sameDiff.constant(
                Nd4j.arange(w).castTo(px.dataType()).reshape(1, 1, w)));                        // [N, P, W]
        SDVariable weighted = g.reshape(-1, c, 1, p).mul(ky.reshape(-1, 1, h, p));             // [N, C, H, P]
        SDVariable dx = MatMul.of(sameDiff, weighted.reshape(-1, c * h, p), kx).reshape(-1, c, h, w);
        return List.of(g, dx, sameDiff.zerosLike(py), sameDiff.zerosLike(px));
    }

    /** {@code max(0, 1 - |pos - v|)}: the bilinear weight of each position for each coordinate. */
    private static SDVariable hat(SameDiff sd, SDVariable v, SDVariable pos) {
        return sd.nn().relu(sd.math().abs(pos.sub(v)).rsub(1.0), 0.0);
    }
}
