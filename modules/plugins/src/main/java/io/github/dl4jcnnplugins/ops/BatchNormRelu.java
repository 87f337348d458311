package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.Arrays;
import java.util.List;
import java.util.function.BinaryOperator;

/**
 * The training {@code BatchNorm2d} (batch statistics), optionally followed by a ReLU, as two host ops for float
 * plug-in graphs on the CPU backend: {@link Forward} {@code (x, gamma, beta) -> (y, mean, var)} and {@link Backward}
 * {@code (x, dy, mean, var, gamma, beta) -> (dx, dgamma, dbeta)}.
 *
 * <p>Why: BatchNorm is memory-bound, and the work is per channel. A task takes one channel (the {@code N} planes of
 * {@code H x W}) and makes all its passes over that channel before the next one, so every pass after the first
 * reads the channel from the second-level cache (GhostModule's {@code [8, 128, 56, 56]}: 100 KB per channel): forward
 * one read of {@code x} from memory and one write of {@code y}, backward one read of {@code x} and {@code dy} and one
 * write of {@code dx}. The ReLU costs nothing more: forward it is applied as {@code y} is written, backward its
 * mask is recomputed from {@code x} with the forward's own arithmetic (bit for bit), so {@code y} is not read
 * again. The sums run in lanes (one per position in a block of up to {@value #BLOCK} elements, so that the JIT
 * vectorises them), each lane moved into a double every {@value #FLUSH} blocks. oneDNN's {@code nchw} kernels took
 * 4.0 ms forward and 6.6 ms backward (plus 1.25 and 2.1 ms for the separate ReLU) per GhostModule BatchNorm, these
 * 2.2 and 3.6 (2 threads). With fewer channels than work for every thread, each channel is split into parts whose
 * partial statistics are combined (Chan et al.'s pairwise update), at the cost of the cache reuse.
 *
 * <p>Semantics are PyTorch's {@code BatchNorm2d} in training: {@code y = (x - mean) * (gamma / sqrt(var + eps)) +
 * beta} with the batch mean and the biased batch variance over {@code (N, H, W)} (two passes: the mean, then the
 * squared deviations from it); the gradient of {@code x} includes the paths through the batch statistics. With the
 * ReLU, {@code max(y, 0)} and its gradient the incoming one times the ReLU's step (0 where the output is 0, as
 * {@link Relu}'s). The {@code mean} and {@code var} outputs are for the running-statistics update: they carry no
 * gradient. Float only (the double-precision parity tests take the portable form); checked against the portable form
 * in double ({@code BatchNormReluTest}).
 */
public final class BatchNormRelu {
    private BatchNormRelu() {
    }

    /** System property: {@code false} keeps the portable form ({@link BatchMoments}, {@link BatchNormKernel}). */
    public static final String PROPERTY = "dl4jcnnplugins.hostBatchNorm";

    /** Elements a kernel works on at a time (a block of one plane of one channel). */
    private static final int BLOCK = 2048;

    /** Whether a training BatchNorm on {@code dt} data in {@code sd} takes this route. */
    static boolean applies(SameDiff sd, DataType dt) {
        return dt == DataType.FLOAT && !"false".equalsIgnoreCase(System.getProperty(PROPERTY))
                && HostOp.usableIn(sd, dt);
    }

    /**
     * {@code {y, mean, var}} for {@code x [N, C, H, W]}, {@code gamma}, {@code beta} {@code [C]}; {@code y} is
     * {@code max(BN(x), 0)} when {@code relu}, else {@code BN(x)}.
     */
    static SDVariable[] train(SameDiff sd, SDVariable x, SDVariable gamma, SDVariable beta, double eps, boolean relu) {
        return new Forward(sd, x, gamma, beta, eps, relu).outputVariables();
    }

    /**
     * {@code x}'s channels as runs of blocks: channel {@code c} is planes {@code n * C + c} of {@code hw} elements,
     * each cut into {@code perPlane} even blocks; a task takes {@code parts} consecutive share of one channel's
     * blocks.
     */
    private record Channels(int n, int c, int hw, int perPlane, int size, int parts, float eps, boolean relu) {
        static Channels of(INDArray x, double eps, long relu) {
            if (x.rank() != 4) {
                throw new ND4JIllegalStateException("BatchNormRelu: an [N, C, H, W] array expected, got "
                        + Arrays.toString(x.shape()));
            }
            int n = (int) x.size(0);
            int c = (int) x.size(1);
            int hw = Math.toIntExact(x.size(2) * x.size(3));   // Host already limits the whole array to 2^31 - 1
            int perPlane = Math.max(1, (hw + BLOCK - 1) / BLOCK);
            int size = (hw + perPlane - 1) / perPlane;
            // enough tasks for every thread; a channel is split only when there are fewer channels than that
            int wanted = 4 * HostOp.threads();
            int parts = c >= wanted ? 1 : Math.min(n * perPlane, (wanted + c - 1) / c);
            return new Channels(n, c, hw, perPlane, size, parts, (float) eps, relu != 0);
        }

        /** Elements per channel. */
        long count() {
            return (long) n * hw;
        }

        /** Blocks per channel. */
        int blocks() {
            return n * perPlane;
        }

        /** The first block of part {@code p} of a channel (part {@code parts} is the end). */
        int partStart(int p) {
            return (int) ((long) p * blocks() / parts);
        }

        /** Flat index of block {@code b}'s first element in channel {@code ch}. */
        int offset(int ch, int b) {
            return ((b / perPlane) * c + ch) * hw + (b % perPlane) * size;
        }

        /** Length of block {@code b}. */
        int length(int b) {
            return Math.min(size, hw - (b % perPlane) * size);
        }
    }

    /** {@code 1 / sqrt(var + eps)} from the stored float variance (forward and backward compute it alike). */
    private static float invStd(float var, float eps) {
        return (float) (1.0 / Math.sqrt((double) var + eps));
    }

    /**
     * The BatchNorm's output {@code (x - mean) * a + beta}, {@code a = gamma / sqrt(var + eps)}: written once, so
     * that the backward's ReLU mask is the forward's bit for bit.
     */
    private static float normalised(float x, float mean, float a, float beta) {
        return (x - mean) * a + beta;
    }

    /**
     * 1 where the ReLU's output {@code r} is positive, 0 where it is 0, without a branch (a mask of random signs
     * mispredicts half its branches; the JIT vectorises {@code min} and products): the smallest positive float times
     * 2^254 exceeds 1.
     */
    private static float step(float r) {
        return Math.min(r * 0x1p127f * 0x1p127f, 1f);
    }

    /** {@code (x, gamma, beta) -> (y, mean, var)}; integer argument: ReLU (0/1); floating-point: epsilon. */
    public static final class Forward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_batchnorm_relu";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, SDVariable gamma, SDVariable beta, double eps, boolean relu) {
            super(sd, x, gamma, beta);
            addIArgument(relu ? 1 : 0);
            addTArgument(eps);
        }

        @Override
        public int getNumOutputs() {
            return 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return tensorAndChannels(in.get(0));
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Channels l = Channels.of(in.get(0), tArguments.get(0), iArguments.get(0));
            Host x = Host.of(in.get(0), false);
            float[] gamma = floats(in.get(1), l.c());
            float[] beta = floats(in.get(2), l.c());
            Host y = Host.of(out.get(0), true);
            float[] mean = new float[l.c()];
            float[] var = new float[l.c()];
            perChannel(l, (c, from, to, whole) -> moments(l, x, c, from, to), BatchNormRelu::combine,
                    (c, m) -> store(l, c, m, mean, var),
                    (c, from, to, m, whole) -> normalise(l, x, y, c, from, to, mean[c], var[c], gamma[c], beta[c]));
            Host.of(out.get(1), true).set(0, mean, 0, l.c());
            Host.of(out.get(2), true).set(0, var, 0, l.c());
        }

        private static void store(Channels l, int c, double[] m, float[] mean, float[] var) {
            mean[c] = (float) m[1];
            var[c] = (float) (m[2] / l.count());
        }

        /**
         * {@code {count, mean, sum of squared deviations}} of blocks {@code [from, to)} of channel {@code c}: the
         * mean in one pass, the squared deviations from it in a second (from the cache when a task has the channel).
         */
        private static double[] moments(Channels l, Host x, int c, int from, int to) {
            Scratch s = Scratch.get();
            double n = 0;
            for (int b = from; b < to; b++) {
                int len = l.length(b);
                x.get(l.offset(c, b), s.v, 0, len);
                s.first.add(s.v, len);
                n += len;
            }
            double mean = s.first.total() / n;
            float m = (float) mean;
            for (int b = from; b < to; b++) {
                int len = l.length(b);
                x.get(l.offset(c, b), s.v, 0, len);
                s.first.addSquaredDeviations(s.v, len, m);
            }
            // deviations from the float mean m, corrected to the exact mean: sum (v - mean)^2 = sum (v - m)^2 -
            // n (mean - m)^2
            double sq = s.first.total() - n * (mean - m) * (mean - m);
            return new double[]{n, mean, Math.max(sq, 0)};
        }

        /** Blocks {@code [from, to)} of channel {@code c} normalised (and rectified) into {@code y}. */
        private static void normalise(Channels l, Host x, Host y, int c, int from, int to, float mean, float var,
                                      float gamma, float beta) {
            float a = gamma * invStd(var, l.eps());
            float[] v = Scratch.get().v;
            for (int b = from; b < to; b++) {
                int len = l.length(b);
                int o = l.offset(c, b);
                x.get(o, v, 0, len);
                if (l.relu()) {
                    for (int j = 0; j < len; j++) {
                        v[j] = Math.max(normalised(v[j], mean, a, beta), 0f);
                    }
                } else {
                    for (int j = 0; j < len; j++) {
                        v[j] = normalised(v[j], mean, a, beta);
                    }
                }
                y.set(o, v, 0, len);
            }
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            SDVariable[] o = outputVariables();
            return List.of(new Backward(sameDiff, arg(0), grads.get(0), o[1], o[2], arg(1), arg(2), tArguments.get(0),
                    iArguments.get(0)).outputVariables());
        }
    }

    /** Elements a lane holds before they move into its double (float lanes vectorise, double lanes do not here). */
    private static final int FLUSH = 16;

    /**
     * A running sum of float blocks with a lane per position in the block ({@code f[i] += v[i]}: the JIT vectorises
     * these loops, not a running scalar sum), each lane moved into a double every {@value #FLUSH} blocks.
     */
    private static final class Lanes {
        private final float[] f = new float[BLOCK];
        private final double[] d = new double[BLOCK];
        private int blocks;
        private int width;
        private boolean flushed;

        void add(float[] v, int len) {
            for (int i = 0; i < len; i++) {
                f[i] += v[i];
            }
            added(len);
        }

        void addSquaredDeviations(float[] v, int len, float m) {
            for (int i = 0; i < len; i++) {
                float e = v[i] - m;
                f[i] += e * e;
            }
            added(len);
        }

        private void added(int len) {
            width = Math.max(width, len);
            if (++blocks == FLUSH) {
                for (int i = 0; i < width; i++) {
                    d[i] += f[i];
                    f[i] = 0;
                }
                blocks = 0;
                flushed = true;
            }
        }

        /**
         * The sum of everything added since the last total; starts anew. The lanes are summed with four partial sums
         * (no chain of dependent additions): on small planes (RFB's 19 x 19, a channel of a few blocks) this is a
         * good part of the work.
         */
        double total() {
            double s0 = 0;
            double s1 = 0;
            double s2 = 0;
            double s3 = 0;
            int i = 0;
            for (; i + 3 < width; i += 4) {
                s0 += f[i];
                s1 += f[i + 1];
                s2 += f[i + 2];
                s3 += f[i + 3];
            }
            for (; i < width; i++) {
                s0 += f[i];
            }
            if (flushed) {
                for (i = 0; i < width; i++) {
                    s1 += d[i];
                }
                Arrays.fill(d, 0, width, 0);
                flushed = false;
            }
            Arrays.fill(f, 0, width, 0f);
            width = 0;
            blocks = 0;
            return s0 + s1 + s2 + s3;
        }
    }

    /** Channels of at most this many elements are kept between the backward's two passes ({@link Kept}). */
    private static final int KEEP = 1 << 16;

    /**
     * A channel's {@code x} and masked gradient as the backward's first pass read them, so that its second pass
     * neither reads them again nor recomputes the ReLU's mask (the mask was a fifth of the backward on RFB's 19 x 19
     * planes).
     */
    private record Kept(float[] x, float[] g) {
    }

    /** The calling thread's {@link Kept} channel for a task that makes both passes ({@code whole}), if it fits. */
    private static Kept kept(Channels l, boolean whole) {
        return whole && l.count() <= KEEP ? Scratch.get().kept((int) l.count()) : null;
    }

    /** A host-op thread's working arrays (one block each), lanes and kept channel. */
    private static final class Scratch {
        private static final ThreadLocal<Scratch> OF_THREAD = ThreadLocal.withInitial(Scratch::new);
        final float[] v = new float[BLOCK];
        final float[] g = new float[BLOCK];
        final Lanes first = new Lanes();
        final Lanes second = new Lanes();
        private Kept kept = new Kept(new float[0], new float[0]);

        static Scratch get() {
            return OF_THREAD.get();
        }

        /** Room for a kept channel of {@code n} elements. */
        Kept kept(int n) {
            if (kept.x().length < n) {
                kept = new Kept(new float[n], new float[n]);
            }
            return kept;
        }
    }

    /** A first pass over blocks {@code [from, to)} of channel {@code c}: its partial result. */
    private interface FirstPass {
        double[] run(int c, int from, int to, boolean whole);
    }

    /** What is kept of channel {@code c}'s combined first-pass result. */
    private interface Done {
        void accept(int c, double[] total);
    }

    /** A second pass over blocks {@code [from, to)} of channel {@code c}, given the channel's combined result. */
    private interface SecondPass {
        void run(int c, int from, int to, double[] total, boolean whole);
    }

    /**
     * The schedule both ops share: every channel's first pass, the channel's parts' results combined and handed to
     * {@code done}, then its second pass. With one part per channel a task makes both passes over its channel one
     * after the other (the second from the cache; {@code whole} is true); else the first passes of all parts run,
     * then the second passes.
     */
    private static void perChannel(Channels l, FirstPass first, BinaryOperator<double[]> combine, Done done,
                                   SecondPass second) {
        if (l.parts() == 1) {
            HostOp.parallelFor(l.c(), c -> {
                double[] total = first.run(c, 0, l.blocks(), true);
                done.accept(c, total);
                second.run(c, 0, l.blocks(), total, true);
            });
            return;
        }
        int parts = l.parts();
        double[][] partial = new double[l.c() * parts][];
        HostOp.parallelFor(partial.length, t -> partial[t] = first.run(t / parts, l.partStart(t % parts),
                l.partStart(t % parts + 1), false));
        double[][] total = new double[l.c()][];
        for (int c = 0; c < l.c(); c++) {
            total[c] = partial[c * parts];
            for (int p = 1; p < parts; p++) {
                total[c] = combine.apply(total[c], partial[c * parts + p]);
            }
            done.accept(c, total[c]);
        }
        HostOp.parallelFor(partial.length, t -> second.run(t / parts, l.partStart(t % parts),
                l.partStart(t % parts + 1), total[t / parts], false));
    }

    /**
     * Chan, Golub and LeVeque's pairwise update of {@code {count, mean, sum of squared deviations}}: exact in
     * exact arithmetic, without the cancellation of a sum of squares.
     */
    private static double[] combine(double[] p, double[] q) {
        if (p[0] == 0) {
            return q;
        }
        double n = p[0] + q[0];
        double d = q[1] - p[1];
        return new double[]{n, p[1] + d * q[0] / n, p[2] + q[2] + d * d * p[0] * q[0] / n};
    }

    /** {@code (x, dy, mean, var, gamma, beta) -> (dx, dgamma, dbeta)}; arguments as {@link Forward}'s. */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_batchnorm_relu_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable x, SDVariable dy, SDVariable mean, SDVariable var, SDVariable gamma,
                 SDVariable beta, double eps, long relu) {
            super(sd, x, dy, mean, var, gamma, beta);
            addIArgument(relu);
            addTArgument(eps);
        }

        @Override
        public int getNumOutputs() {
            return 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return tensorAndChannels(in.get(0));
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Channels l = Channels.of(in.get(0), tArguments.get(0), iArguments.get(0));
            Host x = Host.of(in.get(0), false);
            Host dy = Host.of(in.get(1), false);
            float[] mean = floats(in.get(2), l.c());
            float[] var = floats(in.get(3), l.c());
            float[] gamma = floats(in.get(4), l.c());
            float[] beta = floats(in.get(5), l.c());
            Host dx = Host.of(out.get(0), true);
            float[] dGamma = new float[l.c()];
            float[] dBeta = new float[l.c()];
            // a whole channel that fits is kept (x and the masked gradient) from the first pass for the second
            perChannel(l,
                    (c, from, to, whole) -> sums(l, x, dy, c, from, to, mean[c], var[c], gamma[c], beta[c],
                            kept(l, whole)),
                    (p, q) -> new double[]{p[0] + q[0], p[1] + q[1]},
                    (c, s) -> store(l, c, s, var[c], dGamma, dBeta),
                    (c, from, to, s, whole) -> input(l, x, dy, dx, c, from, to, s, mean[c], var[c], gamma[c],
                            beta[c], kept(l, whole)));
            Host.of(out.get(1), true).set(0, dGamma, 0, l.c());
            Host.of(out.get(2), true).set(0, dBeta, 0, l.c());
        }

        private static void store(Channels l, int c, double[] s, float var, float[] dGamma, float[] dBeta) {
            dGamma[c] = (float) (s[1] * invStd(var, l.eps()));
            dBeta[c] = (float) s[0];
        }

        /**
         * The gradient that reaches the BatchNorm's output in {@code g} (the ReLU's mask applied to {@code dy}'s
         * block, recomputed from {@code x}'s block {@code v}).
         */
        private static void masked(Channels l, float[] v, float[] g, int len, float mean, float a, float beta) {
            if (l.relu()) {
                for (int j = 0; j < len; j++) {
                    g[j] *= step(Math.max(normalised(v[j], mean, a, beta), 0f));
                }
            }
        }

        /** {@code {sum of g, sum of g * (x - mean)}} over blocks {@code [from, to)} of channel {@code c}. */
        private static double[] sums(Channels l, Host x, Host dy, int c, int from, int to, float mean, float var,
                                     float gamma, float beta, Kept kept) {
            float a = gamma * invStd(var, l.eps());
            Scratch s = Scratch.get();
            float[] v = s.v;
            float[] g = s.g;
            for (int b = from, at = 0; b < to; b++) {
                int len = l.length(b);
                int o = l.offset(c, b);
                x.get(o, v, 0, len);
                dy.get(o, g, 0, len);
                masked(l, v, g, len, mean, a, beta);
                if (kept != null) {
                    System.arraycopy(v, 0, kept.x, at, len);
                    System.arraycopy(g, 0, kept.g, at, len);
                    at += len;
                }
                s.first.add(g, len);
                for (int j = 0; j < len; j++) {
                    v[j] = g[j] * (v[j] - mean);
                }
                s.second.add(v, len);
            }
            return new double[]{s.first.total(), s.second.total()};
        }

        /**
         * {@code dx = a * (g - mean(g) - (x - mean) * sum(g * (x - mean)) / (count * (var + eps)))} over blocks
         * {@code [from, to)} of channel {@code c}, {@code a = gamma / sqrt(var + eps)}.
         */
        private static void input(Channels l, Host x, Host dy, Host dx, int c, int from, int to, double[] s,
                                  float mean, float var, float gamma, float beta, Kept kept) {
            float inv = invStd(var, l.eps());
            float a = gamma * inv;
            float k1 = (float) (s[0] / l.count());
            float k2 = (float) (s[1] * ((double) inv * inv) / l.count());
            Scratch scratch = Scratch.get();
            float[] v = scratch.v;
            float[] g = scratch.g;
            for (int b = from, at = 0; b < to; b++) {
                int len = l.length(b);
                int o = l.offset(c, b);
                if (kept != null) {   // what sums() read and masked
                    System.arraycopy(kept.x, at, v, 0, len);
                    System.arraycopy(kept.g, at, g, 0, len);
                    at += len;
                } else {
                    x.get(o, v, 0, len);
                    dy.get(o, g, 0, len);
                    masked(l, v, g, len, mean, a, beta);
                }
                for (int j = 0; j < len; j++) {
                    g[j] = a * (g[j] - k1 - (v[j] - mean) * k2);
                }
                dx.set(o, g, 0, len);
            }
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives are not supported");
        }
    }

    /** Both ops' outputs: an array shaped as {@code x [N, C, H, W]}, then two {@code [C]}. */
    private static List<long[]> tensorAndChannels(long[] x) {
        return List.of(x.clone(), new long[]{x[1]}, new long[]{x[1]});
    }

    /** The first {@code n} elements of a float array. */
    private static float[] floats(INDArray a, int n) {
        float[] f = new float[n];
        HostOp.Host.of(a, false).get(0, f, 0, n);
        return f;
    }
}
