package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@link BilinearSampler#sampleChannelsLast} as one {@link HostOp} (and one for its gradient): the same values and
 * gradients as the composite form, computed by a loop over the sample points instead of some forty SameDiff ops, a
 * quad table, a native gather and (in the backward pass) libnd4j's row-by-row scatter-add.
 *
 * <pre>
 *   inputs  x [N, C, H, W], py [N, G, P], px [N, G, P], optional scale [N, G, P]
 *   output  [N, G, P, C / G]: channel block g of x sampled at (py[n, g, p], px[n, g, p]), times scale
 *           (or [N, G, C / G, P], channels first, when asked)
 *   affine: inputs x [N, C, H, W], theta [N, 2, 3]; output [N, 1, C, outH outW]: the points are
 *           theta @ [x_t, y_t, 1] of each output pixel in pixel units (BilinearSampler.affineSample), computed in
 *           the kernel; the gradient op gives dx and dtheta
 *   y0 = floor(py), ly = py - y0 (likewise x0, lx); corners outside the image count 0;
 *   out = s ((1-ly)(1-lx) v00 + (1-ly) lx v01 + ly (1-lx) v10 + ly lx v11)
 *   d/dpy = s sum_c g ((1-lx)(v10 - v00) + lx (v11 - v01)),  d/dpx = s sum_c g ((1-ly)(v01 - v00) + ly (v11 - v10)),
 *   d/ds  = sum_c g (out / s),  d/dx = the same weights, scattered
 * </pre>
 * Work is split into tasks of (image, group, channel range); each task copies its channels to a scratch array, as
 * they are (planar: fewer than {@value #PLANAR_BELOW} channels) or channels last (so that the four corners of a point
 * are four short contiguous runs), and accumulates its image gradient there (no two tasks write the same element: the
 * result does not depend on the thread count or timing). Computes in double.
 *
 * <p><b>Memory</b> (Java heap, short-lived): per running task the copy of its channels ({@code H W cc}
 * doubles) and in the backward pass their gradient (as many), blocks of 1024 points; the backward pass also
 * holds the coordinate (and scale) gradients per channel range ({@code 2-3 N G P} doubles per range). Nothing grows
 * with {@code P H W}. For the deformable convolution's benchmark ({@code [4, 64, 56, 56]}, 112,896 points) about
 * 50 MB of garbage per training pass.
 */
public final class BilinearSampling {
    private BilinearSampling() {
    }

    /** Sample points handled per block (bounds the scratch arrays of a task). */
    private static final int BLOCK = 1024;

    /**
     * Samples as {@link BilinearSampler#sampleChannelsLast} does ({@code scale} may be null).
     *
     * @param channelsFirst the output's layout: {@code [N, groups, C / groups, P]} (the spatial transformer's image
     *                      layout: no permute forward, and backward the gradient arrives row-major: a permuted view
     *                      would be copied by libnd4j's strided {@code dup}, 1.8 ms for STN's [16, 3, 64, 64]), else
     *                      {@code [N, groups, P, C / groups]} (the layout a matrix product wants next)
     */
    static SDVariable sample(SameDiff sd, SDVariable x, int groups, SDVariable py, SDVariable px, SDVariable scale,
                             boolean channelsFirst) {
        return new Forward(sd, x, groups, py, px, scale, channelsFirst).outputVariable();
    }

    /**
     * {@link BilinearSampler#affineSample}'s sampling as one op: {@code x [N, C, H, W]} sampled at {@code theta @
     * [x_t, y_t, 1]} (theta {@code [N, 2, 3]}) for each of the {@code outH x outW} output pixels, those coordinates
     * computed in the kernel (no {@code [N, 2, P]} coordinate arrays, their slices, products and gradients: about
     * a dozen ops forward and backward).
     *
     * @return {@code [N, 1, C, outH * outW]}
     */
    static SDVariable affineSample(SameDiff sd, SDVariable x, SDVariable theta, long outH, long outW,
                                   boolean alignCorners) {
        return new Forward(sd, x, theta, outH, outW, alignCorners).outputVariable();
    }

    /**
     * Integer arguments after the forward op's {@code groups, channelsFirst} in the affine form, and the normalised
     * target coordinates {@code x_t} of the output columns and {@code y_t} of its rows
     * ({@link BilinearSampler#normalisedCentre}, computed once: a division per point cost more than the sampling).
     */
    private record Affine(int outH, int outW, boolean alignCorners, double[] xt, double[] yt) {
        /** The affine form's arguments at {@code from} of {@code iArgs}, or null when they are not there. */
        static Affine of(long[] iArgs, int from) {
            if (iArgs.length < from + 3) {
                return null;
            }
            int outH = (int) iArgs[from];
            int outW = (int) iArgs[from + 1];
            boolean alignCorners = iArgs[from + 2] != 0;
            double[] xt = new double[outW];
            double[] yt = new double[outH];
            for (int j = 0; j < outW; j++) {
                xt[j] = BilinearSampler.normalisedCentre(j, outW, alignCorners);
            }
            for (int i = 0; i < outH; i++) {
                yt[i] = BilinearSampler.normalisedCentre(i, outH, alignCorners);
            }
            return new Affine(outH, outW, alignCorners, xt, yt);
        }

        int points() {
            return outH * outW;
        }

        /** Pixel units from normalised ones: {@code v * scale + scale - half} ({@link BilinearSampler#pixelScale}). */
        double scale(int size) {
            return BilinearSampler.pixelScale(size, alignCorners);
        }

        double half() {
            return alignCorners ? 0.0 : 0.5;
        }
    }

    /**
     * The points' shape {@code [N, G, P]} from the shapes of the first two inputs: the second's ({@code py}), or
     * {@code [N, 1, outH * outW]} in the affine form.
     */
    private static long[] pointShape(long[] x, long[] second, Affine affine) {
        return affine != null ? new long[]{x[0], 1, affine.points()} : second;
    }

    /** The geometry of one call and its split into tasks. */
    private record Layout(int n, int c, int h, int w, int g, int p, int chunks) {
        static Layout of(long[] x, long[] points, int groups) {
            int n = Math.toIntExact(x[0]);
            int g = groups;
            int cg = Math.toIntExact(x[1] / g);
            // enough channel ranges per (image, group) to keep every thread busy
            int chunks = Math.max(1, Math.min(cg, (HostOp.threads() + n * g - 1) / Math.max(1, n * g)));
            return new Layout(n, Math.toIntExact(x[1]), Math.toIntExact(x[2]), Math.toIntExact(x[3]), g,
                    Math.toIntExact(points[2]), chunks);
        }

        int cg() {
            return c / g;
        }

        int tasks() {
            return n * g * chunks;
        }

        int c0(int chunk) {
            return chunk * cg() / chunks;
        }

        /** Flat index of the first element of {@code task}'s channels of its image. */
        int planesStart(Task task) {
            return (task.n() * c + task.first()) * h * w;
        }

        /** Task {@code t}: image and group {@code ng = n * G + g}, channel range {@code chunk}. */
        Task task(int t) {
            int chunk = t % chunks;
            int ng = t / chunks;
            int c0 = c0(chunk);
            return new Task(ng, ng / g, chunk, c0, c0(chunk + 1) - c0, (ng % g) * cg() + c0);
        }
    }

    /**
     * One task: image and group {@code ng}, image {@code n}, channel range {@code chunk} = channels
     * {@code [c0, c0 + cc)} of the group, i.e. {@code [first, first + cc)} of the image.
     */
    private record Task(int ng, int n, int chunk, int c0, int cc, int first) {
    }

    /** The op's inputs: {@code x} and where its sample points come from. */
    private record Sources(HostOp.Host x, Points where) {
        /** {@code in = (x, py, px[, scale], ...)}, or {@code (x, theta, ...)} in the affine form. */
        static Sources of(List<INDArray> in, Affine affine, boolean scaled) {
            HostOp.Host x = HostOp.Host.of(in.get(0), false);
            if (affine != null) {
                INDArray theta = in.get(1);
                return new Sources(x, new FromTheta(HostOp.Host.of(theta, false).all((int) theta.length()), affine,
                        (int) in.get(0).size(2), (int) in.get(0).size(3)));
            }
            return new Sources(x, new Given(HostOp.Host.of(in.get(1), false), HostOp.Host.of(in.get(2), false),
                    scaled ? HostOp.Host.of(in.get(3), false) : null));
        }

        double[][] points(int first, int len) {
            return where.get(first, len);
        }
    }

    /** Where the sample points come from. */
    private interface Points {
        /**
         * Positions and scales of points {@code [first, first + len)} of {@code [N * G * P]} ({@code [2]} null
         * without a scale).
         */
        double[][] get(int first, int len);
    }

    /** Given as the arrays {@code py, px} and optionally {@code scale}. */
    private record Given(HostOp.Host py, HostOp.Host px, HostOp.Host scale) implements Points {
        @Override
        public double[][] get(int first, int len) {
            return new double[][]{read(py, first, len), read(px, first, len), read(scale, first, len)};
        }
    }

    /** The affine form (one group): {@code theta [N, 2, 3]} applied to the output pixels of an {@code h x w} image. */
    private record FromTheta(double[] theta, Affine affine, int h, int w) implements Points {
        @Override
        public double[][] get(int first, int len) {
            int n = first / affine.points();
            double sx = affine.scale(w);
            double sy = affine.scale(h);
            double[] ys = new double[len];
            double[] xs = new double[len];
            int p = first - n * affine.points();
            int row = p / affine.outW();
            int col = p % affine.outW();
            int t = 6 * n;
            for (int i = 0; i < len; i++) {
                double xt = affine.xt()[col];
                double yt = affine.yt()[row];
                xs[i] = (theta[t] * xt + theta[t + 1] * yt + theta[t + 2]) * sx + (sx - affine.half());
                ys[i] = (theta[t + 3] * xt + theta[t + 4] * yt + theta[t + 5]) * sy + (sy - affine.half());
                if (++col == affine.outW()) {
                    col = 0;
                    row++;
                }
            }
            return new double[][]{ys, xs, null};
        }

        /**
         * The gradient of theta {@code [N, 2, 3]} from those of the points' positions ({@code [N * P]} each):
         * {@code dtheta[n, 0] = sum_p dpx sx [x_t, y_t, 1]}, {@code dtheta[n, 1]} likewise with {@code dpy, sy}.
         */
        double[] thetaGradient(double[] gradPy, double[] gradPx) {
            int n = theta.length / 6;
            double sx = affine.scale(w);
            double sy = affine.scale(h);
            double[] d = new double[theta.length];
            for (int i = 0, p = 0; i < n; i++) {
                for (int row = 0; row < affine.outH(); row++) {
                    double yt = affine.yt()[row];
                    for (int col = 0; col < affine.outW(); col++, p++) {
                        double xt = affine.xt()[col];
                        double gx = gradPx[p] * sx;
                        double gy = gradPy[p] * sy;
                        d[6 * i] += gx * xt;
                        d[6 * i + 1] += gx * yt;
                        d[6 * i + 2] += gx;
                        d[6 * i + 3] += gy * xt;
                        d[6 * i + 4] += gy * yt;
                        d[6 * i + 5] += gy;
                    }
                }
            }
            return d;
        }
    }

    /**
     * One point's corners and weights: row offsets of the four corners in a channels-last array of {@code cc}
     * channels, -1 for a corner outside the image.
     */
    private static final class Point {
        double ly, lx, s;
        int o00, o01, o10, o11;

        /** All four corners inside the image. */
        boolean inside() {
            return (o00 | o01 | o10 | o11) >= 0;
        }

        /** Corners of point {@code (y, x)}; {@code ps} is the image's pixel stride (1 planar, cc channels last). */
        void set(double y, double x, double scale, int h, int w, int ps) {
            double fy = Math.floor(y);
            double fx = Math.floor(x);
            ly = y - fy;
            lx = x - fx;
            s = scale;
            boolean y0 = fy >= 0 && fy <= h - 1;
            boolean y1 = fy + 1 >= 0 && fy + 1 <= h - 1;
            boolean x0 = fx >= 0 && fx <= w - 1;
            boolean x1 = fx + 1 >= 0 && fx + 1 <= w - 1;
            int iy = y0 || y1 ? (int) fy : 0;
            int ix = x0 || x1 ? (int) fx : 0;
            o00 = y0 && x0 ? (iy * w + ix) * ps : -1;
            o01 = y0 && x1 ? (iy * w + ix + 1) * ps : -1;
            o10 = y1 && x0 ? ((iy + 1) * w + ix) * ps : -1;
            o11 = y1 && x1 ? ((iy + 1) * w + ix + 1) * ps : -1;
        }
    }

    /** Rows and columns per block of {@link #transpose} (a block of both stays in L1). */
    private static final int TRANSPOSE_BLOCK = 32;

    /** {@code dst [cols, rows] = src [rows, cols]} transposed (both row-major), in blocks. */
    private static void transpose(double[] src, int rows, int cols, double[] dst) {
        for (int r0 = 0; r0 < rows; r0 += TRANSPOSE_BLOCK) {
            int r1 = Math.min(rows, r0 + TRANSPOSE_BLOCK);
            for (int c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {
                int c1 = Math.min(cols, c0 + TRANSPOSE_BLOCK);
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        dst[c * rows + r] = src[r * cols + c];
                    }
                }
            }
        }
    }

    /** How a task holds its channels of the image; {@code AUTO}: planar below {@value #PLANAR_BELOW} per task. */
    enum ImageLayout { AUTO, PLANAR, CHANNELS_LAST }

    /** System property: the {@link ImageLayout} ({@code auto} by default; the others are for tests). */
    public static final String LAYOUT_PROPERTY = "dl4jcnnplugins.bilinearImageLayout";

    static final EnumProperty.Setting<ImageLayout> LAYOUT = new EnumProperty.Setting<>(LAYOUT_PROPERTY,
            ImageLayout.class, ImageLayout.AUTO, "bilinear sampling image layout");

    /**
     * Channel counts per task below which a task reads its channels as they are (planes) instead of channels last:
     * no transposed copy in and out, the four corners of a point four single elements per plane. The kernels alone
     * (float, 2 threads, medians of 40, fwd / bwd ms, planar vs channels last): {@code [16, 3, 64, 64]} at 4096 points
     * per image (STN) 0.94-1.00 / 1.59-1.75 vs 1.09-1.30 / 1.96-1.99; {@code [4, 16, 56, 56]} 0.77 / 1.25 vs 0.83 /
     * 1.35-1.39; {@code [4, 64, 56, 56]} 3.0-3.1 / 6.9 vs 3.4-3.5 / 6.6.
     */
    private static final int PLANAR_BELOW = 32;

    private static boolean planar(int cc) {
        ImageLayout layout = LAYOUT.get();
        return layout == ImageLayout.PLANAR || layout == ImageLayout.AUTO && cc < PLANAR_BELOW;
    }

    /** The task's channels of its image: planes {@code [cc, H * W]}, or channels last {@code [H * W, cc]}. */
    private static double[] image(HostOp.Host x, Layout l, Task task, boolean planar) {
        int hw = l.h * l.w;
        double[] planes = new double[task.cc() * hw];
        x.get(l.planesStart(task), planes, 0, planes.length);
        if (planar) {
            return planes;
        }
        double[] xs = new double[planes.length];
        transpose(planes, task.cc(), hw, xs);
        return xs;
    }

    /** Writes a task's image gradient ({@link #image}'s layout) to its channels of {@code target}. */
    private static void writeImage(double[] gx, HostOp.Host target, Layout l, Task task, boolean planar) {
        double[] planes = gx;
        if (!planar) {
            planes = new double[gx.length];
            transpose(gx, l.h * l.w, task.cc(), planes);
        }
        target.set(l.planesStart(task), planes, 0, planes.length);
    }

    /**
     * Points {@code [p0, p0 + len)} of image and group {@code ng}, channels {@code [c0, c0 + cc)} of the group, from
     * the output (or its gradient) {@code a} into {@code d}: as {@code [len, cc]} when the output is channels last
     * ({@code [N, G, P, cg]}), as {@code [cc, len]} when it is channels first ({@code [N, G, cg, P]}).
     */
    private static void readBlock(HostOp.Host a, double[] d, Layout l, int ng, int p0, int len, int c0, int cc,
                                  boolean channelsFirst) {
        if (channelsFirst) {
            for (int c = 0; c < cc; c++) {
                a.get((ng * l.cg() + c0 + c) * l.p + p0, d, c * len, len);
            }
        } else {
            readRows(a, d, ng * l.p + p0, len, l.cg(), c0, cc);
        }
    }

    /** The inverse of {@link #readBlock}. */
    private static void writeBlock(double[] d, HostOp.Host a, Layout l, int ng, int p0, int len, int c0, int cc,
                                   boolean channelsFirst) {
        if (channelsFirst) {
            for (int c = 0; c < cc; c++) {
                a.set((ng * l.cg() + c0 + c) * l.p + p0, d, c * len, len);
            }
        } else {
            writeRows(d, a, ng * l.p + p0, len, l.cg(), c0, cc);
        }
    }

    /** Rows {@code [first, first + rows)} of {@code [*, cg]}, columns {@code [c0, c0 + cc)}, into {@code d} as {@code [rows, cc]}. */
    private static void readRows(HostOp.Host a, double[] d, int first, int rows, int cg, int c0, int cc) {
        if (cc == cg) {
            a.get(first * cg, d, 0, rows * cg);
        } else {
            for (int r = 0; r < rows; r++) {
                a.get((first + r) * cg + c0, d, r * cc, cc);
            }
        }
    }

    /** The inverse of {@link #readRows}. */
    private static void writeRows(double[] d, HostOp.Host a, int first, int rows, int cg, int c0, int cc) {
        if (cc == cg) {
            a.set(first * cg, d, 0, rows * cg);
        } else {
            for (int r = 0; r < rows; r++) {
                a.set((first + r) * cg + c0, d, r * cc, cc);
            }
        }
    }

    /** Elements {@code [first, first + len)} of {@code a}, or null for a null {@code a}. */
    private static double[] read(HostOp.Host a, int first, int len) {
        if (a == null) {
            return null;
        }
        double[] d = new double[len];
        a.get(first, d, 0, len);
        return d;
    }

    /** Element {@code k} (channel x channel stride) past a corner's {@code offset}; 0 outside ({@code offset < 0}). */
    private static double value(double[] xs, int offset, int k) {
        return offset < 0 ? 0.0 : xs[offset + k];
    }

    /** {@link #value}, after adding {@code grad} to the corner's image gradient {@code gx} (unless outside). */
    private static double scatter(double[] gx, double[] xs, int offset, int k, double grad) {
        if (offset < 0) {
            return 0.0;
        }
        gx[offset + k] += grad;
        return xs[offset + k];
    }

    /** The forward op: {@code out [N, G, P, C / G]}. */
    public static final class Forward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_bilinear_sample";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, int groups, SDVariable py, SDVariable px, SDVariable scale,
                boolean channelsFirst) {
            super(sd, scale == null ? new SDVariable[]{x, py, px} : new SDVariable[]{x, py, px, scale});
            addIArgument(groups, channelsFirst ? 1 : 0);
        }

        Forward(SameDiff sd, SDVariable x, SDVariable theta, long outH, long outW, boolean alignCorners) {
            super(sd, x, theta);
            addIArgument(1, 1, outH, outW, alignCorners ? 1 : 0);
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            long[] p = pointShape(x, in.get(1), Affine.of(iArgs(), 2));
            long g = iArgs()[0];
            return List.of(iArgs()[1] != 0 ? new long[]{x[0], g, x[1] / g, p[2]} : new long[]{x[0], g, p[2], x[1] / g});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Affine affine = Affine.of(iArgs(), 2);
            Layout l = Layout.of(in.get(0).shape(), pointShape(in.get(0).shape(), in.get(1).shape(), affine),
                    (int) iArgs()[0]);
            Sources src = Sources.of(in, affine, in.size() > 3);
            HostOp.Host y = HostOp.Host.of(out.get(0), true);
            boolean channelsFirst = iArgs()[1] != 0;
            HostOp.parallelFor(l.tasks(), t -> {
                Task task = l.task(t);
                int cc = task.cc();
                boolean planar = planar(cc);
                int ps = planar ? 1 : cc;
                int cs = planar ? l.h * l.w : 1;
                double[] xs = image(src.x(), l, task, planar);
                Point pt = new Point();
                double[] o = new double[Math.min(BLOCK, l.p) * cc];
                for (int p0 = 0; p0 < l.p; p0 += BLOCK) {
                    int len = Math.min(BLOCK, l.p - p0);
                    double[][] pos = src.points(task.ng() * l.p + p0, len);
                    double[] ys = pos[0], xsPos = pos[1], ss = pos[2];
                    // the block's output: point p, channel c at p * ops + c * ocs
                    int ops = channelsFirst ? 1 : cc;
                    int ocs = channelsFirst ? len : 1;
                    for (int p = 0; p < len; p++) {
                        pt.set(ys[p], xsPos[p], ss == null ? 1.0 : ss[p], l.h, l.w, ps);
                        double w00 = (1 - pt.ly) * (1 - pt.lx) * pt.s;
                        double w01 = (1 - pt.ly) * pt.lx * pt.s;
                        double w10 = pt.ly * (1 - pt.lx) * pt.s;
                        double w11 = pt.ly * pt.lx * pt.s;
                        int ob = p * ops;
                        if (pt.inside()) {   // the common case: no test per corner and channel
                            int a = pt.o00, b = pt.o01, d = pt.o10, e = pt.o11;
                            for (int c = 0, k = 0; c < cc; c++, k += cs) {
                                o[ob + c * ocs] = w00 * xs[a + k] + w01 * xs[b + k] + w10 * xs[d + k]
                                        + w11 * xs[e + k];
                            }
                        } else {
                            for (int c = 0, k = 0; c < cc; c++, k += cs) {
                                o[ob + c * ocs] = w00 * value(xs, pt.o00, k) + w01 * value(xs, pt.o01, k)
                                        + w10 * value(xs, pt.o10, k) + w11 * value(xs, pt.o11, k);
                            }
                        }
                    }
                    writeBlock(o, y, l, task.ng(), p0, len, task.c0(), cc, channelsFirst);
                }
            });
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            List<SDVariable> args = new ArrayList<>(List.of(args()));
            args.add(grads.get(0));
            SDVariable[] g = new Backward(sameDiff, args.toArray(new SDVariable[0]), iArgs()).outputVariables();
            return List.of(g);
        }
    }

    /**
     * The gradient op: inputs {@code x, py, px, [scale], gradOut} ({@code gradOut} in the forward output's layout);
     * outputs {@code dx, dpy, dpx, [dscale]}. In the affine form inputs {@code x, theta, gradOut}, outputs
     * {@code dx, dtheta}.
     */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_bilinear_sample_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        /** {@code forward}: the forward op's integer arguments. */
        Backward(SameDiff sd, SDVariable[] args, long[] forward) {
            super(sd, args);
            boolean affine = forward.length > 2;
            // groups, whether a scale is given, layout
            addIArgument(forward[0], affine ? 0 : args.length - 4, forward[1]);
            addIArgument(Arrays.copyOfRange(forward, 2, forward.length));   // the affine form's, if any
        }

        @Override
        public int getNumOutputs() {
            return Affine.of(iArgs(), 3) != null ? 2 : iArgs()[1] == 1 ? 4 : 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            List<long[]> out = new ArrayList<>();
            for (int i = 0; i < in.size() - 1; i++) {
                out.add(in.get(i).clone());
            }
            return out;
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Affine affine = Affine.of(iArgs(), 3);
            Layout l = Layout.of(in.get(0).shape(), pointShape(in.get(0).shape(), in.get(1).shape(), affine),
                    (int) iArgs()[0]);
            boolean scaled = in.size() == 5;
            Sources src = Sources.of(in, affine, scaled);
            HostOp.Host gOut = HostOp.Host.of(in.get(in.size() - 1), false);
            HostOp.Host dx = HostOp.Host.of(out.get(0), true);
            boolean channelsFirst = iArgs()[2] != 0;
            int points = l.n * l.g * l.p;
            // per channel range: its share of the coordinate (and scale) gradients, summed below
            double[][] gradPy = new double[l.chunks][points];
            double[][] gradPx = new double[l.chunks][points];
            double[][] gradScale = scaled ? new double[l.chunks][points] : null;
            HostOp.parallelFor(l.tasks(), t -> {
                Task task = l.task(t);
                int cc = task.cc();
                int chunk = task.chunk();
                boolean planar = planar(cc);
                int ps = planar ? 1 : cc;
                int cs = planar ? l.h * l.w : 1;
                double[] xs = image(src.x(), l, task, planar);
                double[] gx = new double[xs.length];
                double[] go = new double[Math.min(BLOCK, l.p) * cc];
                Point pt = new Point();
                for (int p0 = 0; p0 < l.p; p0 += BLOCK) {
                    int len = Math.min(BLOCK, l.p - p0);
                    int row = task.ng() * l.p + p0;
                    double[][] pos = src.points(row, len);
                    double[] ys = pos[0], xsPos = pos[1], ss = pos[2];
                    readBlock(gOut, go, l, task.ng(), p0, len, task.c0(), cc, channelsFirst);
                    int ops = channelsFirst ? 1 : cc;   // as in the forward op
                    int ocs = channelsFirst ? len : 1;
                    for (int p = 0; p < len; p++) {
                        int pi = row + p;
                        pt.set(ys[p], xsPos[p], scaled ? ss[p] : 1.0, l.h, l.w, ps);
                        double ly = pt.ly, lx = pt.lx;
                        double u00 = (1 - ly) * (1 - lx), u01 = (1 - ly) * lx, u10 = ly * (1 - lx), u11 = ly * lx;
                        int ob = p * ops;
                        // per corner: its share of the image gradient, and sum_c g[c] v[c] (dk below)
                        double s00 = pt.s * u00, s01 = pt.s * u01, s10 = pt.s * u10, s11 = pt.s * u11;
                        double d00 = 0, d01 = 0, d10 = 0, d11 = 0;
                        if (pt.inside()) {   // the common case: no test per corner and channel
                            int a = pt.o00, b = pt.o01, d = pt.o10, e = pt.o11;
                            for (int c = 0, k = 0; c < cc; c++, k += cs) {
                                double g = go[ob + c * ocs];
                                gx[a + k] += g * s00;
                                gx[b + k] += g * s01;
                                gx[d + k] += g * s10;
                                gx[e + k] += g * s11;
                                d00 += g * xs[a + k];
                                d01 += g * xs[b + k];
                                d10 += g * xs[d + k];
                                d11 += g * xs[e + k];
                            }
                        } else {
                            for (int c = 0, k = 0; c < cc; c++, k += cs) {
                                double g = go[ob + c * ocs];
                                d00 += g * scatter(gx, xs, pt.o00, k, g * s00);
                                d01 += g * scatter(gx, xs, pt.o01, k, g * s01);
                                d10 += g * scatter(gx, xs, pt.o10, k, g * s10);
                                d11 += g * scatter(gx, xs, pt.o11, k, g * s11);
                            }
                        }
                        double sy = (1 - lx) * (d10 - d00) + lx * (d11 - d01);
                        double sx = (1 - ly) * (d01 - d00) + ly * (d11 - d10);
                        double sumScale = u00 * d00 + u01 * d01 + u10 * d10 + u11 * d11;
                        gradPy[chunk][pi] = sy * pt.s;
                        gradPx[chunk][pi] = sx * pt.s;
                        if (scaled) {
                            gradScale[chunk][pi] = sumScale;
                        }
                    }
                }
                writeImage(gx, dx, l, task, planar);
            });
            if (affine != null) {
                double[] dTheta = ((FromTheta) src.where()).thetaGradient(sum(gradPy), sum(gradPx));
                HostOp.Host.of(out.get(1), true).set(0, dTheta, 0, dTheta.length);
                return;
            }
            writeSum(gradPy, HostOp.Host.of(out.get(1), true));
            writeSum(gradPx, HostOp.Host.of(out.get(2), true));
            if (scaled) {
                writeSum(gradScale, HostOp.Host.of(out.get(3), true));
            }
        }

        private static void writeSum(double[][] parts, HostOp.Host target) {
            double[] sum = sum(parts);
            target.set(0, sum, 0, sum.length);
        }

        /** The channel ranges' shares summed (into the first). */
        private static double[] sum(double[][] parts) {
            double[] sum = parts[0];
            for (int k = 1; k < parts.length; k++) {
                for (int i = 0; i < sum.length; i++) {
                    sum[i] += parts[k][i];
                }
            }
            return sum;
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives of bilinear sampling are not supported");
        }
    }
}
