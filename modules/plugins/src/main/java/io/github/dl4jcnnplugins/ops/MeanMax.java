package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.Arrays;
import java.util.List;

/**
 * Mean and maximum of an NCHW {@code x} over the same dimensions, as CBAM pools: over the pixels
 * ({@code [N, C, H, W] -> [N, C]} twice, its channel attention) and over the channels ({@code [N, 1, H, W]} twice, its
 * spatial attention).
 *
 * <p>The gradient is {@code dL/dmean / n} on every element of a reduced slice plus {@code dL/dmax} on its first
 * maximal element, as PyTorch's {@code mean}, {@code torch.max(x, dim)} and {@code adaptive_max_pool2d} give it (ties
 * matter: after a ReLU all channels of a pixel can be 0). A NaN is the maximum of a slice holding one (PyTorch's
 * rule).
 *
 * <p>For float plug-in graphs on the CPU backend ({@link HostOp#usableIn}) this is one host op that reads {@code x}
 * once for both statistics and the maximum's position ({@link Forward}) and one that writes {@code dL/dx} once
 * ({@link Backward}). The separate {@link Mean} and {@link Max} read {@code x} twice, and {@link Max}'s gradient finds
 * the maximum again with libnd4j's {@code ismax} (CBAM on {@code [8, 256, 56, 56]}, 2 threads: 14.4 ms over the
 * channels, 7.8 ms over the pixels, then a product with the gradient). Elsewhere (double precision, other backends,
 * {@value HostOp#PROPERTY}{@code =false}) they are used; both routes are compared in {@code MeanMaxTest}.
 */
public final class MeanMax {
    private MeanMax() {
    }

    /** Positions are kept as float values, exact below this. */
    private static final long MAX_REDUCED = 1L << 24;

    /** {@code {mean, max}} of {@code x [N, C, H, W]} over its pixels, each {@code [N, C]}. */
    public static SDVariable[] spatial(SameDiff sd, SDVariable x) {
        if (applies(sd, x.dataType())) {
            return pair(new Forward(sd, x, false, 2, 3));
        }
        return new SDVariable[] {Mean.spatial(sd, x), Max.spatial(sd, x)};
    }

    /** {@code {mean, max}} of {@code x} over {@code dims} (ascending, contiguous), which are kept with size 1. */
    public static SDVariable[] along(SameDiff sd, SDVariable x, int... dims) {
        if (applies(sd, x.dataType())) {
            return pair(new Forward(sd, x, true, Slices.requireContiguous("MeanMax", dims)));
        }
        return new SDVariable[] {Mean.along(sd, x, dims), Max.along(sd, x, dims)};
    }

    private static boolean applies(SameDiff sd, DataType dt) {
        return dt == DataType.FLOAT && HostOp.usableIn(sd, dt);
    }

    private static SDVariable[] pair(Forward f) {
        SDVariable[] o = f.outputVariables();
        return new SDVariable[] {o[0], o[1]};
    }

    /** {@code x}'s shape seen along the reduced dimensions; positions are floats, exact below 2^24. */
    private static Slices slices(long[] shape, long[] iArgs) {
        Slices l = Slices.of(shape, dims(iArgs));
        if (l.r() >= MAX_REDUCED) {
            throw new ND4JIllegalStateException("MeanMax: " + l.r() + " elements per reduced slice of "
                    + Arrays.toString(shape) + " (the float host route takes at most 2^24 - 1; "
                    + HostOp.PROPERTY + "=false takes any)");
        }
        return l;
    }

    /** Integer arguments: keepDims (0/1), then the reduced dimensions. */
    private static int[] dims(long[] iArgs) {
        return Arrays.stream(iArgs, 1, iArgs.length).mapToInt(Math::toIntExact).toArray();
    }

    /** {@code x -> (mean, max, position of the first maximum as a float)}. */
    public static final class Forward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_mean_max";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, boolean keepDims, int... dims) {
            super(sd, x);
            addIArgument(keepDims ? 1 : 0);
            addIArgument(dims);
        }

        @Override
        public int getNumOutputs() {
            return 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            int[] dims = dims(iArgs());
            boolean keep = iArgs()[0] != 0;
            long[] s = new long[keep ? x.length : x.length - dims.length];
            for (int d = 0, j = 0; d < x.length; d++) {
                boolean reduced = d >= dims[0] && d <= dims[dims.length - 1];
                if (!reduced) {
                    s[j++] = x[d];
                } else if (keep) {
                    s[j++] = 1;
                }
            }
            return List.of(s, s.clone(), s.clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Slices l = slices(in.get(0).shape(), iArgs());
            Host x = Host.of(in.get(0), false);
            Host mean = Host.of(out.get(0), true);
            Host max = Host.of(out.get(1), true);
            Host pos = Host.of(out.get(2), true);
            l.run(i -> slice(l, i, x, mean, max, pos),
                    (i, from, n) -> columns(l, i, from, n, x, mean, max, pos));
        }

        /** Slice {@code i} of {@code l.r()} contiguous elements. */
        private static void slice(Slices l, int i, Host x, Host mean, Host max, Host pos) {
            float[] v = new float[Math.min(Slices.BLOCK, l.r())];
            double s0 = 0;
            double s1 = 0;
            double s2 = 0;
            double s3 = 0;
            float m = Float.NEGATIVE_INFINITY;
            int k = 0;
            for (int from = 0; from < l.r(); from += v.length) {
                int n = Math.min(v.length, l.r() - from);
                x.get(i * l.r() + from, v, 0, n);
                if (from == 0) {
                    m = v[0];
                }
                int j = 0;
                for (; j + 3 < n; j += 4) {   // four partial sums: no chain of dependent additions
                    s0 += v[j];
                    s1 += v[j + 1];
                    s2 += v[j + 2];
                    s3 += v[j + 3];
                }
                for (; j < n; j++) {
                    s0 += v[j];
                }
                for (j = 0; j < n; j++) {
                    if (v[j] > m) {
                        m = v[j];
                        k = from + j;
                    }
                }
            }
            double sum = s0 + s1 + s2 + s3;
            if (sum != sum) {   // a NaN in the slice (or inf - inf): the first NaN, if any, is the maximum
                int nan = firstNaN(x, i * l.r(), 1, l.r());
                if (nan >= 0) {
                    m = Float.NaN;
                    k = nan;
                }
            }
            mean.set(i, new float[] {(float) (sum / l.r())}, 0, 1);
            max.set(i, new float[] {m}, 0, 1);
            pos.set(i, new float[] {k}, 0, 1);
        }

        /** Columns {@code [from, from + n)} of slice {@code i}, its reduced elements {@code l.b()} apart. */
        private static void columns(Slices l, int i, int from, int n, Host x, Host mean, Host max, Host pos) {
            float[] v = new float[n];
            double[] s = new double[n];
            float[] m = new float[n];
            float[] k = new float[n];
            x.get(l.index(i, 0, from), m, 0, n);
            for (int j = 0; j < n; j++) {
                s[j] = m[j];
            }
            for (int r = 1; r < l.r(); r++) {
                x.get(l.index(i, r, from), v, 0, n);
                for (int j = 0; j < n; j++) {
                    s[j] += v[j];
                }
                for (int j = 0; j < n; j++) {
                    if (v[j] > m[j]) {
                        m[j] = v[j];
                        k[j] = r;
                    }
                }
            }
            for (int j = 0; j < n; j++) {
                v[j] = (float) (s[j] / l.r());
                if (s[j] != s[j]) {   // as in slice()
                    int nan = firstNaN(x, l.index(i, 0, from + j), l.b(), l.r());
                    if (nan >= 0) {
                        m[j] = Float.NaN;
                        k[j] = nan;
                    }
                }
            }
            int o = i * l.b() + from;
            mean.set(o, v, 0, n);
            max.set(o, m, 0, n);
            pos.set(o, k, 0, n);
        }

        /** The index of the first NaN among {@code count} elements {@code stride} apart from {@code start}, or -1. */
        private static int firstNaN(Host x, int start, int stride, int count) {
            float[] e = new float[1];
            for (int r = 0; r < count; r++) {
                x.get(start + r * stride, e, 0, 1);
                if (e[0] != e[0]) {
                    return r;
                }
            }
            return -1;
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            SDVariable[] o = outputVariables();
            SDVariable gMean = grads.get(0) != null ? grads.get(0) : sameDiff.zerosLike(o[0]);
            SDVariable gMax = grads.get(1) != null ? grads.get(1) : sameDiff.zerosLike(o[1]);
            return List.of(new Backward(sameDiff, arg(), gMean, gMax, o[2], iArgs()).outputVariable());
        }
    }

    /** {@code (x, dL/dmean, dL/dmax, position) -> dL/dx} ({@code x} only for its shape). */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_mean_max_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable x, SDVariable gMean, SDVariable gMax, SDVariable pos, long[] iArgs) {
            super(sd, x, gMean, gMax, pos);
            addIArgument(iArgs);
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return List.of(in.get(0).clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Slices l = slices(in.get(0).shape(), iArgs());
            int reduced = l.a() * l.b();
            float[] gMean = new float[reduced];
            float[] gMax = new float[reduced];
            float[] posf = new float[reduced];
            Host.of(in.get(1), false).get(0, gMean, 0, reduced);
            Host.of(in.get(2), false).get(0, gMax, 0, reduced);
            Host.of(in.get(3), false).get(0, posf, 0, reduced);
            int[] pos = new int[reduced];
            for (int j = 0; j < reduced; j++) {
                gMean[j] /= l.r();
                pos[j] = (int) posf[j];
            }
            Host dx = Host.of(out.get(0), true);
            l.run(i -> slice(l, i, gMean[i], gMax[i], pos[i], dx),
                    (i, from, n) -> columns(l, i, from, n, gMean, gMax, pos, dx));
        }

        private static void slice(Slices l, int i, float gMean, float gMax, int k, Host dx) {
            float[] v = new float[Math.min(Slices.BLOCK, l.r())];
            for (int from = 0; from < l.r(); from += v.length) {
                int n = Math.min(v.length, l.r() - from);
                Arrays.fill(v, 0, n, gMean);
                if (k >= from && k < from + n) {
                    v[k - from] += gMax;
                }
                dx.set(i * l.r() + from, v, 0, n);
            }
        }

        private static void columns(Slices l, int i, int from, int n, float[] gMean, float[] gMax, int[] pos,
                                    Host dx) {
            int o = i * l.b() + from;
            float[] v = new float[n];
            for (int r = 0; r < l.r(); r++) {
                for (int j = 0; j < n; j++) {
                    v[j] = pos[o + j] == r ? gMean[o + j] + gMax[o + j] : gMean[o + j];
                }
                dx.set(l.index(i, r, from), v, 0, n);
            }
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives are not supported");
        }
    }
}
