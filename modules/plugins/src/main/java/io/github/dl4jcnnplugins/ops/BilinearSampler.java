package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Differentiable bilinear sampling of NCHW feature maps at arbitrary (fractional) positions, with zeros outside
 * the image: the one sampler behind the spatial transformer ({@code grid_sample}) and deformable convolution
 * ({@code deform_conv2d}'s bilinear im2col).
 *
 * <pre>
 *   y0 = floor(py), x0 = floor(px), ly = py - y0, lx = px - x0
 *   out = (1-ly)(1-lx) x[y0, x0] + (1-ly) lx x[y0, x0+1] + ly (1-lx) x[y0+1, x0] + ly lx x[y0+1, x0+1]
 * </pre>
 * where every neighbour outside {@code [0, H) x [0, W)} contributes 0 (torchvision {@code deform_conv2d} and
 * {@code grid_sample(padding_mode='zeros')} semantics; a point with {@code py <= -1}, {@code py >= H},
 * {@code px <= -1} or {@code px >= W} samples 0). Gradients flow to {@code x} and to the coordinates (through
 * {@code ly}, {@code lx}; {@code floor} is piecewise constant).
 *
 * <p>The four neighbours of a point are fetched as one row by {@link RowGather} (native gather, scatter-add
 * gradient) from a "quad table": the zero-padded input laid out as rows {@code (n, y, x, g)} holding the 4 pixels of
 * the 2x2 window at {@code (y - 1, x - 1)}, channels last; they are combined by a broadcast product and a sum over
 * the 4 corners. <b>Memory</b> grows linearly with the number of sample points: for {@code P} points per image and
 * {@code C} channels the forward pass holds the quad table ({@code 4 * N * C * (H+1) * (W+1)} values), the gathered
 * neighbours ({@code 4 * N * C * P}), their weighted copy (as many) and the result ({@code N * C * P}), plus
 * {@code O(N * P)} coordinates, weights and indices; the backward pass adds the neighbours' gradient
 * ({@code 4 * N * C * P}) and a zero quad table for the scatter-add. Nothing is proportional to {@code P * H * W}
 * (as a one-hot interpolation matrix would be). For a deformable convolution {@code P = K * H_out * W_out},
 * {@code K = kH * kW}: e.g. {@code [4, 64, 56, 56]} with a 3x3 kernel gathers {@code 4 * 7.2M} values (116 MB in
 * float). libnd4j's scatter-add costs 1.3-1.9 us per row on top of the values it adds (measured: 65,536 rows of 12
 * floats 124 ms, 112,896 rows of 256 floats 146 ms, 2 threads), so one row of {@code 4 C} per point instead of four
 * rows of {@code C} is what makes the backward pass affordable.
 *
 * <p>Also the functional spatial-transformer pieces, {@link #affineGrid} and {@link #gridSample}, with PyTorch's
 * {@code F.affine_grid} / {@code F.grid_sample(mode='bilinear', padding_mode='zeros')} conventions.
 *
 * <p><b>Host ops.</b> In a plug-in graph on ND4J's CPU backend, for float or double data ({@link HostOp#usableIn}),
 * {@link #sampleChannelsLast} and {@link #gridSample} (unless {@link Sampling#SEPARABLE} is asked for) build
 * {@link BilinearSampling}'s host ops instead of the composite form described here: the same values and gradients,
 * several times faster. Everywhere else (CUDA, a SameDiff graph of your own, other data types,
 * {@code -Ddl4jcnnplugins.hostOps=false}) the composite form runs.
 */
public final class BilinearSampler {
    private BilinearSampler() {
    }

    /**
     * Samples {@code x [N, C, H, W]} at pixel coordinates; channel block {@code g} (of {@code groups} contiguous
     * blocks of {@code C / groups} channels) is sampled at its own positions.
     *
     * @param points the number {@code P} of sample points per image and group
     * @param py     row coordinates {@code [N, groups, P]} in pixels (0 = centre of the first row)
     * @param px     column coordinates {@code [N, groups, P]} in pixels
     * @param scale  optional factor {@code [N, groups, P]} applied to each sample (e.g. DCNv2's mask), or null
     * @return {@code [N, groups, P, C / groups]} (channels last: the layout a matrix product wants next)
     */
    public static SDVariable sampleChannelsLast(SameDiff sd, SDVariable x, long channels, long height, long width,
                                                int groups, long points, SDVariable py, SDVariable px,
                                                SDVariable scale) {
        if (groups < 1 || channels % groups != 0) {
            throw new IllegalArgumentException("BilinearSampler: groups=" + groups + " must divide channels=" + channels);
        }
        if (HostOp.usableIn(sd, x.dataType())) {
            return BilinearSampling.sample(sd, x, groups, py, px, scale, false);
        }
        DataType dt = x.dataType();
        long cg = channels / groups;
        long p = points;
        // Quad table: row (n, y', x', g), y' in [0, H], x' in [0, W], holds the 4 corners around the zero-padded pixel
        // (y' - 1, x' - 1), y-major: [x[y'-1, x'-1], x[y'-1, x'], x[y', x'-1], x[y', x']] (zeros outside the image).
        // One gathered row per point instead of four: libnd4j's scatter-add (the gather's gradient) costs per row.
        long hq = height + 1;
        long wq = width + 1;
        SDVariable padded = Pad.pad2d(sd, x, height, width, 1, 1, 1, 1, Pad.Mode.ZERO)
                .reshape(-1, groups, cg, height + 2, width + 2);
        SDVariable[] quad = new SDVariable[4];
        for (int dy = 0; dy < 2; dy++) {
            for (int dx = 0; dx < 2; dx++) {
                quad[2 * dy + dx] = padded.get(SDIndex.all(), SDIndex.all(), SDIndex.all(),
                        SDIndex.interval((long) dy, dy + hq), SDIndex.interval((long) dx, dx + wq));
            }
        }
        SDVariable table = sd.stack(2, quad)                                            // [N, G, 4, cg, H+1, W+1]
                .permute(0, 4, 5, 1, 2, 3).reshape(-1, 4 * cg);                        // [N*(H+1)*(W+1)*G, 4*cg]

        // Low corner and interpolation fraction per axis: [N, G, P].
        SDVariable y0 = sd.math().floor(py);
        SDVariable x0 = sd.math().floor(px);
        SDVariable ly = py.sub(y0);
        SDVariable lx = px.sub(x0);
        // Per-axis weights of the low and high corner, 0 outside the image: [N, G, P] each. Products through Mul
        // (SameDiff's multiply_bp took ~12 ms per call here).
        SDVariable wy0 = Mul.same(sd, ly.rsub(1.0), inside(y0, height, dt));
        SDVariable wy1 = Mul.same(sd, ly, inside(y0.add(1.0), height, dt));
        SDVariable wx0 = Mul.same(sd, lx.rsub(1.0), inside(x0, width, dt));
        SDVariable wx1 = Mul.same(sd, lx, inside(x0.add(1.0), width, dt));
        if (scale != null) {
            wy0 = Mul.same(sd, wy0, scale);
            wy1 = Mul.same(sd, wy1, scale);
        }
        // Weights of the 4 corners (y-major): [N, G, P, 4].
        SDVariable w4 = sd.stack(3, Mul.same(sd, wy0, wx0), Mul.same(sd, wy0, wx1),
                Mul.same(sd, wy1, wx0), Mul.same(sd, wy1, wx1));
        // Row of (n, y0 + 1, x0 + 1, g) in the quad table, in INT64. A point whose y0 + 1 or x0 + 1 is clipped has all
        // four weights 0 (every corner outside the image), so the row it reads does not matter.
        SDVariable n = sd.cumsum(sd.onesLike(py.sum(1, 2)), true, false, 0).castTo(DataType.INT64)
                .reshape(-1, 1, 1);                                                     // batch index
        SDVariable g = sd.constant(Nd4j.arange(groups).castTo(DataType.INT64).reshape(1, groups, 1));
        SDVariable idx = n.mul(hq).add(clippedIndex(sd, y0.add(1.0), hq)).mul(wq)
                .add(clippedIndex(sd, x0.add(1.0), wq)).mul(groups).add(g).reshape(-1); // [N*G*P]
        SDVariable corners = RowGather.gather(sd, table, idx).reshape(-1, 4, cg);      // [N*G*P, 4, cg]
        // Weighted sum of the 4 corners: a broadcast product and a sum over the corner axis. (A batched [1, 4] x [4, cg]
        // matmul avoids the 4x-sized product but libnd4j runs it as N*G*P tiny products: 137 ms vs ~10 ms for DCN's
        // bench case, and its matmul_bp ~280 ms.)
        SDVariable weighted = Mul.of(sd, corners, w4.reshape(-1, 4, 1), 2);            // [N*G*P, 4, cg]
        return weighted.sum(1).reshape(-1, groups, p, cg);                             // [N, G, P, cg]
    }

    /**
     * {@link #sampleChannelsLast} with one set of positions for all channels, in channels-first layout.
     *
     * @param points the number {@code P} of sample points per image
     * @param py row coordinates {@code [N, P]} in pixels
     * @param px column coordinates {@code [N, P]} in pixels
     * @return {@code [N, C, P]}
     */
    public static SDVariable sample(SameDiff sd, SDVariable x, long channels, long height, long width,
                                    long points, SDVariable py, SDVariable px) {
        long p = points;
        if (HostOp.usableIn(sd, x.dataType())) {   // straight into this layout (BilinearSampling.sample)
            return BilinearSampling.sample(sd, x, 1, py.reshape(-1, 1, p), px.reshape(-1, 1, p), null, true)
                    .reshape(-1, channels, p);
        }
        SDVariable s = sampleChannelsLast(sd, x, channels, height, width, 1, p,
                py.reshape(-1, 1, p), px.reshape(-1, 1, p), null);
        return s.reshape(-1, p, channels).permute(0, 2, 1);
    }

    /** 1 where {@code 0 <= v <= size - 1}, else 0 (no gradient). */
    private static SDVariable inside(SDVariable v, long size, DataType dt) {
        return v.gte(0.0).castTo(dt).mul(v.lte(size - 1.0).castTo(dt));
    }

    private static SDVariable clippedIndex(SameDiff sd, SDVariable v, long size) {
        // clip_by_value rejects min == max, hence the size-1 case
        SDVariable clipped = size > 1 ? sd.math().clipByValue(v, 0.0, size - 1.0) : v.mul(0.0);
        return clipped.castTo(DataType.INT64);
    }

    // ------------------------------------------------------------------ functional spatial transformer

    /**
     * PyTorch's {@code F.affine_grid(theta, [N, C, outH, outW], alignCorners)}: for output pixel {@code (i, j)} the
     * normalised target point {@code x_t = -1 + (2j + 1) / outW} (alignCorners false) or {@code -1 + 2j / (outW - 1)}
     * (true; 0 when {@code outW = 1}), {@code y_t} likewise, mapped to {@code [x_s, y_s] = theta @ [x_t, y_t, 1]}.
     *
     * @param theta {@code [N, 2, 3]} (or {@code [N, 6]}, row-major) affine matrices
     * @return the sampling grid {@code [N, outH, outW, 2]} holding {@code (x_s, y_s)} in {@code [-1, 1]} units
     */
    public static SDVariable affineGrid(SameDiff sd, SDVariable theta, long outH, long outW, boolean alignCorners) {
        return affineSources(sd, theta, outH, outW, alignCorners).permute(0, 2, 1).reshape(-1, outH, outW, 2);
    }

    /** {@code theta @ [x_t, y_t, 1]} per output pixel: {@code [N, 2, outH * outW]}, rows {@code x_s, y_s}. */
    private static SDVariable affineSources(SameDiff sd, SDVariable theta, long outH, long outW, boolean alignCorners) {
        double[][] base = new double[3][(int) (outH * outW)];                  // rows x_t, y_t, 1
        for (int i = 0; i < outH; i++) {
            for (int j = 0; j < outW; j++) {
                int k = (int) (i * outW + j);
                base[0][k] = normalisedCentre(j, outW, alignCorners);
                base[1][k] = normalisedCentre(i, outH, alignCorners);
                base[2][k] = 1.0;
            }
        }
        INDArray b = Nd4j.createFromArray(base).castTo(theta.dataType());
        SDVariable st = MatMul.of(sd, theta.reshape(-1, 3), sd.constant(b));  // [N*2, P]: rows x_s, y_s per sample
        return st.reshape(-1, 2, outH * outW);
    }

    /**
     * {@link #gridSample} of {@link #affineGrid}: the spatial transformer's sampler, the same values and gradients.
     * Where {@link #gridSample} would use the host op, the host op takes theta itself and computes each output
     * pixel's source in pixel units in its kernel ({@code theta @ [x_t, y_t, 1]} times {@code (W/2, H/2)} plus a
     * shift: {@link #affineSources} and {@link #unnormalise} in one), and its gradient op returns theta's gradient:
     * no grid, coordinate arrays, slices or permutes in the graph.
     */
    public static SDVariable affineSample(SameDiff sd, SDVariable x, long channels, long height, long width,
                                          SDVariable theta, long outH, long outW, boolean alignCorners) {
        Sampling sampling = defaultSampling();
        if (!HostOp.usableIn(sd, x.dataType()) || sampling == Sampling.SEPARABLE) {
            return gridSample(sd, x, channels, height, width, affineGrid(sd, theta, outH, outW, alignCorners), outH,
                    outW, alignCorners, sampling);
        }
        // the host op computes theta's pixel coordinates itself (BilinearSampling.affineSample)
        return BilinearSampling.affineSample(sd, x, theta.reshape(-1, 2, 3), outH, outW, alignCorners)
                .reshape(-1, channels, outH, outW);
    }

    /** How {@link #gridSample} computes the bilinear interpolation; both give the same values and gradients. */
    public enum Sampling {
        /** {@link #SEPARABLE} when the image is small enough for it to be the faster (see {@link #gridSample}), else {@link #GATHER}. */
        AUTO,
        /**
         * Four neighbours per point fetched by {@link RowGather}; the image gradient is {@link SamplingAdjoint}'s
         * batched product for small images (see {@link #ADJOINT_MAX_MACS}), else the gather's scatter-add.
         */
        GATHER,
        /** Two matrix-shaped contractions with per-axis interpolation weights; no gather, no scatter. */
        SEPARABLE
    }

    /**
     * Largest {@code C * H * W} for which {@link Sampling#AUTO} picks the separable form. Its cost per point grows with
     * the image ({@code C * H * W} multiply-adds), the gather's does not (but libnd4j's scatter-add, its gradient, has
     * a cost per gathered row). Measured (spatial transformer, -onednn, 2 threads, training path, fwd+bwd, two runs
     * each): 64x1x28x28 separable 200-233 ms vs gather 322-380 ms; 32x3x32x32 201-207 vs 210-236; 16x3x64x64
     * 453-490 vs 364-390.
     */
    static final long SEPARABLE_MAX_IMAGE = 1L << 12;
    /**
     * Largest per-image {@code C * H * P} intermediate (elements) for which {@link Sampling#AUTO} picks the separable
     * form, and for which the gather form takes its image gradient from {@link SamplingAdjoint} instead of a
     * scatter-add.
     */
    static final long SEPARABLE_MAX_INTERMEDIATE = 1L << 21;
    /**
     * Largest per-image {@code C * H * W * P} (multiply-adds of {@link SamplingAdjoint}'s product) for which the gather
     * form takes its image gradient from {@link SamplingAdjoint}. Measured (spatial transformer 16x3x64x64, 0.05 GMAC
     * per image, -onednn, 2 threads, steady state, 6 alternating runs): fwd+bwd median 380 ms with the scatter-add,
     * 283 ms with the adjoint (busy host: the same case took 170 ms in a quieter compare run).
     */
    static final long ADJOINT_MAX_MACS = 1L << 27;

    /**
     * PyTorch's {@code F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners)}: samples
     * {@code x [N, C, H, W]} at the normalised points of {@code grid [N, outH, outW, 2]} ({@code (x, y)}, -1 and 1 are
     * the outer edges of the border pixels when alignCorners is false, their centres when true), mapped to pixels
     * by {@link #unnormalise}. {@link Sampling#AUTO}: the separable form when {@code C * H * W <= 4096} and
     * {@code C * H * outH * outW <= 2^21} (its per-image intermediate), else the gather.
     *
     * @return {@code [N, C, outH, outW]}
     */
    public static SDVariable gridSample(SameDiff sd, SDVariable x, long channels, long height, long width,
                                        SDVariable grid, long outH, long outW, boolean alignCorners) {
        return gridSample(sd, x, channels, height, width, grid, outH, outW, alignCorners, defaultSampling());
    }

    /** System property: the {@link Sampling} that {@link #gridSample} uses when none is given (auto, gather, separable). */
    public static final String SAMPLING_PROPERTY = "dl4jcnnplugins.gridSample";

    /** The {@link Sampling} named by {@value #SAMPLING_PROPERTY}, default {@link Sampling#AUTO}; read when a graph is built. */
    public static Sampling defaultSampling() {
        return EnumProperty.parse(SAMPLING_PROPERTY, System.getProperty(SAMPLING_PROPERTY), Sampling.class, Sampling.AUTO);
    }

    /**
     * {@link #gridSample(SameDiff, SDVariable, long, long, long, SDVariable, long, long, boolean)} with the
     * interpolation chosen by {@code sampling}.
     */
    public static SDVariable gridSample(SameDiff sd, SDVariable x, long channels, long height, long width,
                                        SDVariable grid, long outH, long outW, boolean alignCorners, Sampling sampling) {
        long p = outH * outW;
        SDVariable g = grid.reshape(-1, p, 2);
        SDVariable gx = g.get(SDIndex.all(), SDIndex.all(),
                SDIndex.point(0));
        SDVariable gy = g.get(SDIndex.all(), SDIndex.all(),
                SDIndex.point(1));
        SDVariable px = unnormalise(gx, width, alignCorners);
        SDVariable py = unnormalise(gy, height, alignCorners);
        boolean host = HostOp.usableIn(sd, x.dataType());
        boolean separable = switch (sampling) {
            case SEPARABLE -> true;
            case GATHER -> false;
            case AUTO -> !host && channels * height * width <= SEPARABLE_MAX_IMAGE
                    && channels * height * p <= SEPARABLE_MAX_INTERMEDIATE;
        };
        SDVariable out;
        if (separable) {
            out = sampleSeparable(sd, x, channels, height, width, p, py, px);
        } else if (!host && channels * height * p <= SEPARABLE_MAX_INTERMEDIATE
                && channels * height * width * p <= ADJOINT_MAX_MACS) {
            // The gather's own image gradient is libnd4j's row-by-row scatter-add: the gather samples a stopped copy
            // of x and SamplingAdjoint sends the gradient to x as one batched product instead (small images only).
            out = SamplingAdjoint.of(sd, sample(sd, SamplingAdjoint.stopped(sd, x), channels, height, width, p, py, px),
                    x, py, px, channels, height, width, p);
        } else {
            out = sample(sd, x, channels, height, width, p, py, px);
        }
        return out.reshape(-1, channels, outH, outW);
    }

    /**
     * Bilinear sampling as {@code out[n, c, p] = sum_y ky[n, p, y] sum_x x[n, c, y, x] kx[n, p, x]}, where
     * {@code kx[n, p, .]} holds {@code 1 - lx} at column {@code floor(px)} and {@code lx} at {@code floor(px) + 1}
     * (and likewise {@code ky}): columns outside the image do not exist, so their weights vanish (zero padding). The
     * inner sum is a batched matrix product {@code [P, W] x [W, C*H]}, the outer a broadcast product and a sum; the
     * one-hot column indicators carry no gradient, so the gradient with respect to the coordinates is PyTorch's
     * (one-sided at integer positions). Cost {@code N * C * H * W * P} multiply-adds and an {@code [N, P, C, H]}
     * intermediate: for small images only.
     *
     * @return {@code [N, C, P]}
     */
    static SDVariable sampleSeparable(SameDiff sd, SDVariable x, long channels, long height, long width,
                                      long points, SDVariable py, SDVariable px) {
        long p = points;
        SDVariable kx = axisWeights(sd, px, width, p, x.dataType());                            // [N, P, W]
        SDVariable ky = axisWeights(sd, py, height, p, x.dataType()).reshape(-1, p, 1, height); // [N, P, 1, H]
        // Points-major, so that the sum over rows runs along the last (contiguous) axis.
        SDVariable rows = MatMul.of(sd, kx, x.reshape(-1, channels * height, width), false, true) // [N, P, C*H]
                .reshape(-1, p, channels, height);
        return Mul.of(sd, rows, ky, 2).sum(3).permute(0, 2, 1);                                 // [N, C, P]
    }

    /** Interpolation weights of coordinates {@code v [N, P]} over the {@code size} positions of one axis: {@code [N, P, size]}. */
    private static SDVariable axisWeights(SameDiff sd, SDVariable v, long size, long p, DataType dt) {
        SDVariable v0 = sd.math().floor(v).reshape(-1, p, 1);
        SDVariable frac = v.reshape(-1, p, 1).sub(v0);
        SDVariable pos = sd.constant(Nd4j.arange(size).castTo(dt).reshape(1, 1, size));
        SDVariable low = v0.eq(pos).castTo(dt);                                                 // one-hot floor(v)
        SDVariable high = v0.add(1.0).eq(pos).castTo(dt);                                       // one-hot floor(v) + 1
        return low.add(Mul.of(sd, high.sub(low), frac, 2));                                     // (1-f) low + f high
    }

    /**
     * Normalised coordinate to pixels: {@code ((v + 1) * size - 1) / 2} (alignCorners false) or
     * {@code (v + 1) * (size - 1) / 2} (true).
     */
    public static SDVariable unnormalise(SDVariable v, long size, boolean alignCorners) {
        SDVariable scaled = v.add(1.0).mul(pixelScale(size, alignCorners));
        return alignCorners ? scaled : scaled.sub(0.5);
    }

    /** Pixels per normalised unit: {@code (size - 1) / 2} with alignCorners, else {@code size / 2}. */
    static double pixelScale(long size, boolean alignCorners) {
        return alignCorners ? (size - 1) / 2.0 : size / 2.0;
    }

    /** Normalised position of pixel {@code i} of {@code n} (PyTorch's {@code linspace_from_neg_one}). */
    static double normalisedCentre(long i, long n, boolean alignCorners) {
        if (alignCorners) {
            return n <= 1 ? 0.0 : -1.0 + 2.0 * i / (n - 1);
        }
        return -1.0 + (2.0 * i + 1.0) / n;
    }
}
