package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.enums.WeightsFormat;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

import java.util.ArrayList;
import java.util.List;


/**
 * 2-D convolution on NCHW activations with PyTorch-layout weights {@code [out, in/groups, kH, kW]}.
 *
 * <p>SameDiff has no {@code groups} argument: depthwise convolutions use its depthwise op, other grouped
 * convolutions are one convolution per group on channel slices, concatenated (both have checked gradients).
 *
 * <p><b>Dilated convolutions.</b> The oneDNN builds of ND4J 1.0.0-M2.1 ({@code nd4j-native} classifiers
 * {@code *-onednn*}) fail on every dilated {@code conv2d} in SameDiff ("could not create a descriptor for a dilated
 * convolution forward propagation primitive"; DL4J's own {@code ConvolutionLayer} is not affected). A stride-1 dilated convolution can instead be computed as <i>space-to-batch</i>:
 * the output pixels {@code o = q d + a} of a dilation-{@code d} convolution only read the input pixels
 * {@code = a (mod d)}, so the {@code d x d} interleaved sub-grids of the (zero-padded) input are stacked on the
 * batch axis, convolved with the same weights at dilation 1 (padding {@code p / d}), and interleaved back. It is
 * built from reshape, permute, constant padding and slicing only (ops whose gradients are right in M2.1). Which
 * path a dilated convolution takes is {@link #dilatedStrategy()}; strided dilated convolutions always take the
 * native op.
 */
public final class Conv {
    private Conv() {
    }

    /** Hyper-parameters of a convolution; per-axis values are {@code {h, w}}. */
    public record Spec(int kH, int kW, int sH, int sW, int pH, int pW, int dH, int dW, int groups) {
        public static Spec of(int kernel, int stride, int padding, int dilation, int groups) {
            return new Spec(kernel, kernel, stride, stride, padding, padding, dilation, dilation, groups);
        }

        public static Spec of(int kernel, int stride, int padding) {
            return of(kernel, stride, padding, 1, 1);
        }

        /** Output size along one axis: {@code floor((in + 2p - d(k-1) - 1) / s) + 1}. */
        public static long outSize(long in, int k, int s, int p, int d) {
            return Math.floorDiv(in + 2L * p - (long) d * (k - 1) - 1, s) + 1;
        }

        /** The same convolution with groups 1 (one group's, or a depthwise one written as dense). */
        public Spec ungrouped() {
            return new Spec(kH, kW, sH, sW, pH, pW, dH, dW, 1);
        }

        public long outH(long h) {
            return outSize(h, kH, sH, pH, dH);
        }

        public long outW(long w) {
            return outSize(w, kW, sW, pW, dW);
        }

        Conv2DConfig config(WeightsFormat format) {
            return Conv2DConfig.builder().kH(kH).kW(kW).sH(sH).sW(sW).pH(pH).pW(pW).dH(dH).dW(dW)
                    .paddingMode(PaddingMode.VALID).dataFormat(Conv2DConfig.NCHW).weightsFormat(format).build();
        }
    }

    /** How a stride-1 dilated convolution is computed (see the class comment). */
    public enum Dilated {
        /**
         * {@link #DIRECT} where it applies (a float plug-in graph with oneDNN loaded, see {@link DirectConv}).
         * Otherwise {@link #TAPS} on every build when at most {@value Conv#TAPS_UP_TO_INSIDE} of the multiply-adds read inside
         * the image (groups 1). Otherwise, when the loaded ND4J build has oneDNN helpers enabled: space-to-batch, or
         * {@link #IM2COL} when a sub-grid would have fewer than {@value Conv#IM2COL_BELOW_CELLS} pixels along an axis
         * (large dilation on a small map); else the native op.
         */
        AUTO,
        /** SameDiff's dilated {@code conv2d} (fails on the oneDNN builds of M2.1). */
        NATIVE,
        /** Always space-to-batch. */
        SPACE_TO_BATCH,
        /**
         * Always patches and a matrix product: {@link Im2Col} gathers each output pixel's {@code C kH kW} inputs,
         * one batched product with the {@code [out, C kH kW]} weights (see {@link #im2col}).
         */
        IM2COL,
        /**
         * Always one matrix product per kernel tap over the output pixels whose input for that tap is inside the
         * image (see {@link #taps}); taps that only ever read padding cost nothing.
         */
        TAPS,
        /**
         * oneDNN's convolution called directly ({@link DirectConv}) where it applies (float, oneDNN loaded, groups 1;
         * any stride), else as {@link #AUTO}.
         */
        DIRECT
    }

    /**
     * System property that sets the initial {@link #dilatedStrategy()}: auto, native, space_to_batch, im2col, taps or
     * direct.
     */
    public static final String DILATED_PROPERTY = "dl4jcnnplugins.dilatedConv";

    private static final EnumProperty.Setting<Dilated> DILATED = new EnumProperty.Setting<>(DILATED_PROPERTY,
            Dilated.class, Dilated.AUTO, "dilated strategy");
    private static volatile Boolean oneDnn;

    static Dilated parseDilated(String value) {
        return EnumProperty.parse(DILATED_PROPERTY, value, Dilated.class, Dilated.AUTO);
    }

    /** The current strategy for stride-1 dilated convolutions; read when a plug-in's graph is built. */
    public static Dilated dilatedStrategy() {
        return DILATED.get();
    }

    /**
     * Sets how stride-1 dilated convolutions are built from now on (graphs already built keep theirs).
     * The initial value comes from the system property {@value #DILATED_PROPERTY}, default {@code AUTO}.
     */
    public static void dilatedStrategy(Dilated strategy) {
        DILATED.set(strategy);
    }

    /** True if the loaded ND4J native build was compiled with oneDNN and its helpers are allowed. */
    public static boolean oneDnnActive() {
        Boolean built = oneDnn;
        if (built == null) {
            // ND4J first: NativeOpsHolder initialised before the backend is loaded fails for good (and with it ND4J)
            Nd4j.getBackend();
            String info;
            try {
                info = NativeOpsHolder.getInstance().getDeviceNativeOps().buildInfo();
            } catch (RuntimeException | LinkageError e) {
                info = "";
            }
            built = info != null && info.contains("HAVE_ONEDNN");
            oneDnn = built;
        }
        return built && Nd4j.getEnvironment().helpersAllowed();
    }

    /**
     * Sub-grid size (pixels per axis) below which {@link Dilated#AUTO} takes {@link Dilated#IM2COL} instead of
     * space-to-batch on a oneDNN build: oneDNN is slow on many tiny images. Measured (-onednn, 2 threads, fwd+bwd in
     * the JIT's steady state, alternating runs, busy host): ASPP {@code 2x512x32x32}, rates 6/12/18 (sub-grids 6, 3,
     * 2): space-to-batch median 909 ms (826-987, 6 runs), im2col for all three 748 ms (697-874, 6 runs), this rule
     * (im2col for rates 12 and 18) 689-913 ms (3 runs); RFB {@code 4x512x19x19}, rates 3/5 (sub-grids 7, 4):
     * space-to-batch 204-241 ms, im2col 329-550 ms, so RFB keeps space-to-batch.
     */
    static final long IM2COL_BELOW_CELLS = 4;

    /**
     * How {@link #conv2d} computes this convolution on an {@code h x w} input: {@link Dilated#NATIVE} for the native
     * op. Only stride-1 dilated convolutions take another route.
     */
    static Dilated route(Spec spec, long h, long w) {
        if ((spec.dH() == 1 && spec.dW() == 1) || spec.sH() != 1 || spec.sW() != 1) {
            return Dilated.NATIVE;
        }
        Dilated dilated = DILATED.get();
        return switch (dilated) {
            case NATIVE, SPACE_TO_BATCH, IM2COL, TAPS -> dilated;
            case AUTO, DIRECT -> spec.groups() == 1 && insideFraction(spec, h, w) <= TAPS_UP_TO_INSIDE
                    ? Dilated.TAPS
                    : !oneDnnActive() ? Dilated.NATIVE
                    : new SubGrid(h, spec.kH(), spec.pH(), spec.dH()).cells() < IM2COL_BELOW_CELLS
                      || new SubGrid(w, spec.kW(), spec.pW(), spec.dW()).cells() < IM2COL_BELOW_CELLS
                    ? Dilated.IM2COL : Dilated.SPACE_TO_BATCH;
        };
    }

    /**
     * {@code conv2d(x, weight, bias)} as in PyTorch, for undilated convolutions (a dilated one needs the input size:
     * use {@link #conv2d(SameDiff, SDVariable, SDVariable, SDVariable, long, long, Spec, long, long)}).
     * {@code weight} is {@code [out, in/groups, kH, kW]}, {@code bias} is {@code [out]} or null.
     */
    public static SDVariable conv2d(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                                    long outChannels, Spec spec) {
        if (spec.dH() != 1 || spec.dW() != 1) {
            throw new IllegalArgumentException("a dilated convolution (dilation " + spec.dH() + "x" + spec.dW()
                    + ") needs the input height and width: call Conv.conv2d(..., spec, h, w)");
        }
        return conv2d(sd, x, weight, bias, inChannels, outChannels, spec, -1, -1);
    }

    /**
     * {@code conv2d(x, weight, bias)} as in PyTorch on {@code x [N, inChannels, height, width]}. {@code weight} is
     * {@code [out, in/groups, kH, kW]}, {@code bias} is {@code [out]} or null. {@code height} and {@code width} are only
     * used by a stride-1 dilated convolution computed as space-to-batch.
     */
    public static SDVariable conv2d(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                                    long outChannels, Spec spec, long height, long width) {
        int g = spec.groups();
        if (direct(spec, inChannels) && DirectConv.applies(sd, x.dataType(), spec, inChannels, outChannels, height, width)) {
            SDVariable y = DirectConv.conv2d(sd, x, weight, spec, height, width);
            return bias == null ? y : sd.nn().biasAdd(y, bias, true);
        }
        Dilated route = route(spec, height, width);
        if (route != Dilated.NATIVE && (height < 1 || width < 1)) {
            throw new IllegalArgumentException("a dilated convolution (dilation " + spec.dH() + "x" + spec.dW()
                    + ") needs the input height and width; got " + height + "x" + width);
        }
        if (route == Dilated.TAPS && g == 1) {
            return taps(sd, x, weight, bias, inChannels, outChannels, spec, height, width);
        }
        boolean products = height > 0 && width > 0 && denseAsProducts();
        if (g == 1 && products) {
            return isPointwise(spec) ? pointwise(sd, x, weight, bias, inChannels, outChannels, height, width)
                    : im2col(sd, x, weight, bias, inChannels, outChannels, spec, height, width);
        }
        if (route == Dilated.SPACE_TO_BATCH
                || ((route == Dilated.IM2COL || route == Dilated.TAPS) && g > 1 && g == inChannels)) {
            // (depthwise: the native depthwise op on the sub-grids)
            return spaceToBatch(sd, x, weight, bias, inChannels, outChannels, spec, height, width);
        }
        if (route == Dilated.IM2COL && g == 1) {
            return im2col(sd, x, weight, bias, inChannels, outChannels, spec, height, width);
        }
        if (g == 1) {
            // conv2d_bp rejects OIYX weights in 1.0.0-M2.1, so give SameDiff its default [kH, kW, in, out].
            SDVariable w = weight.permute(2, 3, 1, 0);
            Conv2DConfig cfg = spec.config(WeightsFormat.YXIO);
            return bias == null ? sd.cnn().conv2d(x, w, cfg) : sd.cnn().conv2d(x, w, bias, cfg);
        }
        if (g == inChannels && inChannels <= DEPTHWISE_AS_DENSE_MAX_CHANNELS && products) {
            return im2col(sd, x, blockDiagonal(sd, weight, inChannels, outChannels), bias, inChannels, outChannels,
                    spec.ungrouped(), height, width);
        }
        if (g == inChannels) {
            // Depthwise: PyTorch [C*m, 1, kH, kW] -> SameDiff [kH, kW, C, m] (output channel c*m + j in both).
            long m = outChannels / inChannels;
            SDVariable w = weight.reshape(inChannels, m, spec.kH(), spec.kW()).permute(2, 3, 0, 1);
            Conv2DConfig cfg = spec.config(WeightsFormat.YXIO);
            return bias == null ? sd.cnn().depthWiseConv2d(x, w, cfg) : sd.cnn().depthWiseConv2d(x, w, bias, cfg);
        }
        long ci = inChannels / g;
        long co = outChannels / g;
        SDVariable[] outs = new SDVariable[g];
        for (int i = 0; i < g; i++) {
            SDVariable xi = x.get(SDIndex.all(), SDIndex.interval(i * ci, (i + 1) * ci), SDIndex.all(), SDIndex.all());
            SDVariable wi = weight.get(SDIndex.interval(i * co, (i + 1) * co), SDIndex.all(), SDIndex.all(), SDIndex.all());
            SDVariable bi = bias == null ? null : bias.get(SDIndex.interval(i * co, (i + 1) * co));
            outs[i] = conv2d(sd, xi, wi, bi, ci, co, spec.ungrouped(), height, width);
        }
        return sd.concat(1, outs);
    }

    /**
     * Whether {@link #conv2d} calls oneDNN directly for {@code spec} where {@link DirectConv} applies: always with
     * {@link Dense#DIRECT}; with {@link Dense#AUTO}, dilated convolutions (unless {@link #dilatedStrategy()} names
     * another route), 1x1 kernels and depthwise convolutions ({@code groups == inChannels}). Undilated larger dense
     * kernels keep libnd4j's convolution, whose backward pass was faster (3x3, {@code [8, 64, 56, 56] -> 64}:
     * conv2d_bp 16.2 ms, direct 12.5 + 13.5; {@code [4, 128, 19, 19] -> 128}: 3.3 against 2.1 + 1.8). Depthwise
     * 3x3 on {@code [8, 128, 56, 56]}: libnd4j's depthwise_conv2d 9.5 ms forward, 8.8 backward; oneDNN's jit_dw
     * kernels in their blocked layout, reorders included, ~3 forward and ~6.5 backward (op traces, 2 threads).
     */
    static boolean direct(Spec spec, long inChannels) {
        boolean dilated = spec.dH() != 1 || spec.dW() != 1;
        boolean depthwise = spec.groups() > 1 && spec.groups() == inChannels;
        Dilated d = DILATED.get();
        return switch (denseStrategy()) {
            case DIRECT -> true;
            case NATIVE, PRODUCTS -> dilated && d == Dilated.DIRECT;
            case AUTO -> dilated ? d == Dilated.AUTO || d == Dilated.DIRECT
                    : depthwise || spec.kH() == 1 && spec.kW() == 1 && spec.groups() == 1;
        };
    }

    /**
     * How one spatial axis of a stride-1 convolution with kernel {@code k}, padding {@code p} and dilation {@code d}
     * on {@code size} pixels splits into {@code d} interleaved sub-grids. With {@code p = q d + r}: {@code r} zeros
     * are added before and {@link #after()} after, so that the padded length is a multiple of {@code d}; each
     * sub-grid then has {@link #cells()} pixels and is convolved at dilation 1 with padding {@code q}, giving
     * {@link #subOut()} outputs; interleaved, these are at least {@link #out()} and the rest is cropped.
     */
    record SubGrid(long size, int k, int p, int d) {
        int q() {
            return p / d;
        }

        int before() {
            return p % d;
        }

        /** The least {@code e >= r} with {@code r + size + e = 0 (mod d)}. */
        int after() {
            int r = before();
            return r + (int) Math.floorMod(-(2L * r + size), (long) d);
        }

        long cells() {
            return (before() + size + after()) / d;
        }

        long subOut() {
            return cells() + 2L * q() - k + 1;
        }

        long out() {
            return Spec.outSize(size, k, 1, p, d);
        }
    }

    /** A stride-1 dilated convolution as space-to-batch (see the class comment); groups as {@link #conv2d}. */
    static SDVariable spaceToBatch(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                                   long outChannels, Spec spec, long h, long w) {
        SubGrid gh = new SubGrid(h, spec.kH(), spec.pH(), spec.dH());
        SubGrid gw = new SubGrid(w, spec.kW(), spec.pW(), spec.dW());
        int dh = spec.dH();
        int dw = spec.dW();
        SDVariable padded = Pad.pad2d(sd, x, h, w, gh.before(), gh.after(), gw.before(), gw.after(), Pad.Mode.ZERO);
        // [N, C, ch*dh, cw*dw] -> [N*C, ch, dh, cw, dw] -> [dh, dw, N*C, ch, cw] -> [dh*dw*N, C, ch, cw]
        // (N and C merged: a rank-5 permutation, which libnd4j copied ~4x faster than rank 6 in isolation)
        SDVariable batched = padded.reshape(-1, gh.cells(), dh, gw.cells(), dw)
                .permute(2, 4, 0, 1, 3)
                .reshape(-1, inChannels, gh.cells(), gw.cells());
        Spec sub = new Spec(spec.kH(), spec.kW(), 1, 1, gh.q(), gw.q(), 1, 1, spec.groups());
        SDVariable y = conv2d(sd, batched, weight, bias, inChannels, outChannels, sub, gh.cells(), gw.cells());
        // [dh*dw*N, O, oh, ow] -> [dh, dw, N*O, oh, ow] -> [N*O, oh, dh, ow, dw] -> [N, O, oh*dh, ow*dw]
        SDVariable merged = y.reshape(dh, dw, -1, gh.subOut(), gw.subOut())
                .permute(2, 3, 0, 4, 1)
                .reshape(-1, outChannels, gh.subOut() * dh, gw.subOut() * dw);
        if (gh.subOut() * dh == gh.out() && gw.subOut() * dw == gw.out()) {
            return merged;
        }
        return merged.get(SDIndex.all(), SDIndex.all(), SDIndex.interval(0L, gh.out()), SDIndex.interval(0L, gw.out()));
    }

    /**
     * A convolution (groups 1) as patches and one batched matrix product: {@code [N, out, C kH kW] x [N, C kH kW,
     * outH outW]}, the weights repeated along the batch ({@link Mul#repeatAlongBatch}; libnd4j's product does not broadcast).
     * PyTorch's {@code [out, C, kH, kW]} weights are already the rows of the product, in the patches' order. The
     * gradient is the product's two gradient products and {@code im2col_bp} (col2im): no space-to-batch copies, and
     * the products run on oneDNN's matmul where the build has it.
     */
    static SDVariable im2col(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                             long outChannels, Spec spec, long h, long w) {
        long k = inChannels * spec.kH() * spec.kW();
        long oh = spec.outH(h);
        long ow = spec.outW(w);
        SDVariable patches = Im2Col.of(sd, x, spec).reshape(-1, k, oh * ow);                 // [N, C kH kW, P]
        SDVariable rows = Mul.repeatAlongBatch(sd, weight.reshape(1, outChannels, k), x, 3);       // [N, out, C kH kW]
        SDVariable y = MatMul.of(sd, rows, patches).reshape(-1, outChannels, oh, ow);
        return bias == null ? y : sd.nn().biasAdd(y, bias, true);
    }

    /**
     * {@link Dilated#AUTO} takes {@link Dilated#TAPS} for a dilated convolution (groups 1) when at most this fraction
     * of its multiply-adds reads inside the image ({@link #insideFraction}), on every build. Measured (fwd+bwd, 2
     * threads, alternating runs): ASPP {@code 2x512x32x32}, rates 6 / 12 / 18 (77% / 56% / 39% inside), -onednn
     * 720-770 -> 441-500 ms, generic 718-758 -> 604-700; its rate 6 alone by taps rather than space-to-batch, fwd
     * 135-151 -> 104-128 ms, fwd+bwd about equal. RFB {@code 4x512x19x19}, rates 2 / 3 (87% / 80%) by taps: fwd+bwd
     * 210-267 -> 234-270 ms, so it keeps its route.
     */
    static final double TAPS_UP_TO_INSIDE = 0.78;

    /**
     * The output range {@code [first, end)} along one axis (stride 1) whose input for kernel tap {@code i} is
     * inside the {@code size} input pixels: output {@code o} reads input {@code o - p + i d}.
     */
    static long[] tapRange(long size, long out, int p, int d, int i) {
        long first = Math.max(0, p - (long) i * d);
        long end = Math.min(out, size + p - (long) i * d);
        return new long[]{first, Math.max(first, end)};
    }

    /**
     * The fraction of a stride-1 convolution's multiply-adds whose input is inside the image (not padding); 1 when the
     * input size is unknown ({@code h} or {@code w} below 1).
     */
    static double insideFraction(Spec spec, long h, long w) {
        long oh = spec.outH(h);
        long ow = spec.outW(w);
        if (h < 1 || w < 1 || oh < 1 || ow < 1) {
            return 1;
        }
        return (double) insideOutputs(h, oh, spec.kH(), spec.pH(), spec.dH())
                * insideOutputs(w, ow, spec.kW(), spec.pW(), spec.dW())
                / ((double) spec.kH() * oh * spec.kW() * ow);
    }

    /** Along one axis: the number of (tap, output) pairs whose input is inside the {@code size} pixels. */
    private static long insideOutputs(long size, long out, int k, int p, int d) {
        long n = 0;
        for (int i = 0; i < k; i++) {
            long[] r = tapRange(size, out, p, d, i);
            n += r[1] - r[0];
        }
        return n;
    }

    /**
     * A stride-1 convolution (groups 1) as one matrix product per kernel tap: {@code y = b + sum over taps (i, j)
     * of W[:, :, i, j] x[rows, cols]}, where each tap's product covers only the output pixels whose input for that
     * tap lies inside the image (zero-padded back to the output size, then summed). The padding's
     * zeros are never multiplied: a dilation that is large against the map (ASPP's rate 18 on a 32x32 map reads 39%
     * inside) does only the multiply-adds that matter. Gradients: the products', the slices' and the pads' (all
     * checked in M2.1); the per-tap weights are one unstack of the permuted weights, whose gradient is one stack.
     */
    static SDVariable taps(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                           long outChannels, Spec spec, long h, long w) {
        long oh = spec.outH(h);
        long ow = spec.outW(w);
        int kk = spec.kH() * spec.kW();
        // Channels first, [C, N, H, W], so that a tap's product is one 2-D product over all images' pixels.
        SDVariable[] tapWeights = sd.unstack(weight.permute(2, 3, 0, 1).reshape(kk, outChannels, inChannels), 0, kk);
        SDVariable xc = x.permute(1, 0, 2, 3);
        List<SDVariable> parts = new ArrayList<>();
        for (int i = 0; i < spec.kH(); i++) {
            long[] r = tapRange(h, oh, spec.pH(), spec.dH(), i);
            for (int j = 0; j < spec.kW(); j++) {
                long[] c = tapRange(w, ow, spec.pW(), spec.dW(), j);
                long rows = r[1] - r[0];
                long cols = c[1] - c[0];
                if (rows == 0 || cols == 0) {
                    continue;
                }
                long y0 = r[0] - spec.pH() + (long) i * spec.dH();
                long x0 = c[0] - spec.pW() + (long) j * spec.dW();
                SDVariable in = rows == h && cols == w ? xc : xc.get(SDIndex.all(), SDIndex.all(),
                        SDIndex.interval(y0, y0 + rows), SDIndex.interval(x0, x0 + cols));
                SDVariable product = MatMul.of(sd, tapWeights[i * spec.kW() + j], in.reshape(inChannels, -1))
                        .reshape(outChannels, -1, rows, cols);                                   // [out, N, rows, cols]
                parts.add(Pad.pad2d(sd, product, rows, cols, (int) r[0], (int) (oh - r[1]), (int) c[0],
                        (int) (ow - c[1]), Pad.Mode.ZERO));
            }
        }
        if (parts.isEmpty()) {
            // every tap reads padding only (padding wider than the dilated kernel): the output is the bias
            return im2col(sd, x, weight, bias, inChannels, outChannels, spec, h, w);
        }
        // pairwise adds (libnd4j's n-ary mergeadd took ~200 ms for nine [2, 256, 32, 32] floats, forward and back)
        while (parts.size() > 1) {
            List<SDVariable> sums = new ArrayList<>();
            for (int k = 0; k + 1 < parts.size(); k += 2) {
                sums.add(parts.get(k).add(parts.get(k + 1)));
            }
            if (parts.size() % 2 == 1) {
                sums.add(parts.get(parts.size() - 1));
            }
            parts = sums;
        }
        SDVariable y = parts.get(0).permute(1, 0, 2, 3);
        return bias == null ? y : sd.nn().biasAdd(y, bias, true);
    }

    /**
     * How a convolution with groups 1 is computed when its input size is known (depthwise and other grouped
     * convolutions are built from these or from the native depthwise op, see the class comment).
     */
    public enum Dense {
        /**
         * {@link #PRODUCTS} unless the loaded ND4J build has oneDNN helpers enabled, then {@link #NATIVE} (stride-1
         * dilated convolutions then follow {@link #dilatedStrategy()}).
         */
        AUTO,
        /** SameDiff's {@code conv2d} (stride-1 dilated convolutions follow {@link #dilatedStrategy()}). */
        NATIVE,
        /**
         * Matrix products: a pointwise convolution is one batched product ({@link Conv#pointwise}), any other
         * kernel im2col and one batched product ({@link Conv#im2col}); any stride, padding and dilation. Depthwise
         * convolutions on up to {@value Conv#DEPTHWISE_AS_DENSE_MAX_CHANNELS} channels too, as dense ones with
         * block-diagonal weights ({@link Conv#blockDiagonal}).
         */
        PRODUCTS,
        /** oneDNN's convolution called directly ({@link DirectConv}) wherever it applies, else as {@link #AUTO}. */
        DIRECT
    }

    /** System property that sets how convolutions with groups 1 are built: auto, native, products or direct. */
    public static final String DENSE_PROPERTY = "dl4jcnnplugins.denseConv";

    /** The strategy named by {@value #DENSE_PROPERTY}, default {@link Dense#AUTO}; read when a graph is built. */
    public static Dense denseStrategy() {
        return EnumProperty.parse(DENSE_PROPERTY, System.getProperty(DENSE_PROPERTY), Dense.class, Dense.AUTO);
    }

    /**
     * Whether {@link #denseStrategy()} computes groups-1 convolutions as products here. The generic build's
     * {@code conv2d} / {@code conv2d_bp} (im2col and OpenBLAS inside libnd4j, 5-30 GFLOP/s measured) lose to our
     * im2col and batched products; on oneDNN builds the native op is as fast or faster inside a plug-in. Measured,
     * generic build, fwd+bwd (2 threads, JIT warmed up, one run each, busy host), native -> products: CoordConv 705 ->
     * 186 ms, STN 820 -> 368, RFB 1228 -> 593, ASPP 1637 -> 685, DCN v2 1114 -> 771, ASFF 1526 -> 896; -onednn Ghost
     * (pointwise products) 122-147 -> 154-184 ms, RFB (im2col for its dilated convs) 204-241 -> 329-550.
     */
    static boolean denseAsProducts() {
        return switch (denseStrategy()) {
            case NATIVE -> false;
            case PRODUCTS -> true;
            case AUTO, DIRECT -> !oneDnnActive();
        };
    }

    /**
     * Largest channel count for which {@link Dense#PRODUCTS} computes a depthwise convolution as a dense one with
     * block-diagonal weights ({@link #blockDiagonal}): {@code C} times the multiply-adds, but the generic build's
     * {@code depthwise_conv2d} / {@code _bp} are slower still. Measured (generic, Ghost {@code 8x128x56x56}, 3x3
     * depthwise on 128 channels, fwd+bwd, one run each): native depthwise ops 336 + 1867 ms of the module's ~2400 ms;
     * the module 2965 -> 759 ms with this (and its pointwise conv as a product).
     */
    static final long DEPTHWISE_AS_DENSE_MAX_CHANNELS = 256;

    /**
     * Depthwise weights {@code [C m, 1, kH, kW]} as the weights {@code [C m, C, kH, kW]} of the equivalent dense
     * convolution: output channel {@code o} reads input channel {@code o / m} only (a broadcast product with a
     * constant 0/1 mask, whose gradient sums back to the depthwise weights).
     */
    static SDVariable blockDiagonal(SameDiff sd, SDVariable weight, long inChannels, long outChannels) {
        long m = outChannels / inChannels;
        INDArray mask = Nd4j.zeros(weight.dataType(), outChannels, inChannels, 1, 1);
        for (long o = 0; o < outChannels; o++) {
            mask.putScalar(new long[]{o, o / m, 0, 0}, 1.0);
        }
        return weight.mul(sd.constant(mask));
    }

    /** True for a 1x1 convolution with stride 1, no padding and groups 1 (the dilation does not matter). */
    static boolean isPointwise(Spec spec) {
        return spec.kH() == 1 && spec.kW() == 1 && spec.sH() == 1 && spec.sW() == 1 && spec.pH() == 0
                && spec.pW() == 0 && spec.groups() == 1;
    }

    /**
     * A pointwise (1x1, stride 1, groups 1) convolution as one batched matrix product {@code [N, out, in] x
     * [N, in, H W]}, the weights repeated along the batch ({@link Mul#repeatAlongBatch}); its gradient is the product's
     * two gradient products (no im2col copy). Measured in isolation (float, 2 threads, medians of 9),
     * {@code [8, 128, 56, 56] -> 128}: generic conv2d 66.6 ms, conv2d_bp 198 ms, products 10.7 / 10.1 + 11.2 ms.
     */
    static SDVariable pointwise(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                                long outChannels, long h, long w) {
        SDVariable rows = Mul.repeatAlongBatch(sd, weight.reshape(1, outChannels, inChannels), x, 3);  // [N, out, in]
        SDVariable y = MatMul.of(sd, rows, x.reshape(-1, inChannels, h * w)).reshape(-1, outChannels, h, w);
        return bias == null ? y : sd.nn().biasAdd(y, bias, true);
    }

    /** A 1x1 convolution without bias as a matrix product: {@code weight} is {@code [out, in, 1, 1]} or {@code [out, in]}. */
    public static SDVariable linear(SameDiff sd, SDVariable v, SDVariable weight, long in, long out) {
        return MatMul.of(sd, v, weight.reshape(out, in), false, true);
    }
}
