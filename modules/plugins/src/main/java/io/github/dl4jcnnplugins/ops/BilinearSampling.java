package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link BilinearSampler#sampleChannelsLast} as one {@link HostOp} (and one for its gradient): the same values and
 * gradients as the composite form, computed by a loop over the sample points instead of some forty SameDiff ops, a
 * quad table, a native gather and (in the backward pass) libnd4j's row-by-row scatter-add.
 *
 * <pre>
 *   inputs  x [N, C, H, W], py [N, G, P], px [N, G, P], optional scale [N, G, P]
 *   output  [N, G, P, C / G]: channel block g of x sampled at (py[n, g, p], px[n, g, p]), times scale
 *   y0 = floor(py), ly = py - y0 (likewise x0, lx); corners outside the image count 0;
 *   out = s ((1-ly)(1-lx) v00 + (1-ly) lx v01 + ly (1-lx) v10 + ly lx v11)
 *   d/dpy = s sum_c g ((1-lx)(v10 - v00) + lx (v11 - v01)),  d/dpx = s sum_c g ((1-ly)(v01 - v00) + ly (v11 - v10)),
 *   d/ds  = sum_c g (out / s),  d/dx = the same weights, scattered
 * </pre>
 * Work is split into tasks of (image, group, channel range); each task copies its channels to a channels-last scratch
 * array, so that the four corners of a point are four short contiguous runs, and accumulates its image gradient there
 * (no two tasks write the same element: the result does not depend on the thread count or timing). Computes in double.
 */
public final class BilinearSampling {
    private BilinearSampling() {
    }

    /**
     * Samples as {@link BilinearSampler#sampleChannelsLast} does ({@code scale} may be null).
     *
     * @return {@code [N, groups, P, C / groups]}
     */
    static SDVariable sample(SameDiff sd, SDVariable x, int groups, SDVariable py, SDVariable px, SDVariable scale) {
        return new Forward(sd, x, groups, py, px, scale).outputVariable();
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
    }

    /**
     * One point's corners and weights: row offsets of the four corners in a channels-last array of {@code cc}
     * channels, -1 for a corner outside the image.
     */
    private static final class Point {
        double ly, lx, s;
        int o00, o01, o10, o11;

        void set(double y, double x, double scale, int h, int w, int cc) {
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
            o00 = y0 && x0 ? (iy * w + ix) * cc : -1;
            o01 = y0 && x1 ? (iy * w + ix + 1) * cc : -1;
            o10 = y1 && x0 ? ((iy + 1) * w + ix) * cc : -1;
            o11 = y1 && x1 ? ((iy + 1) * w + ix + 1) * cc : -1;
        }
    }

    /** Channels {@code [c0, c0 + cc)} of image {@code n} of {@code x}, channels last: {@code [H * W * cc]}. */
    private static double[] channelsLast(HostOp.Host x, Layout l, int n, int c0, int cc) {
        int hw = l.h * l.w;
        double[] xs = new double[hw * cc];
        for (int c = 0; c < cc; c++) {
            int base = (n * l.c + c0 + c) * hw;
            for (int i = 0; i < hw; i++) {
                xs[i * cc + c] = x.get(base + i);
            }
        }
        return xs;
    }

    private static double corner(double[] xs, int offset, int c) {
        return offset < 0 ? 0.0 : xs[offset + c];
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

        Forward(SameDiff sd, SDVariable x, int groups, SDVariable py, SDVariable px, SDVariable scale) {
            super(sd, scale == null ? new SDVariable[]{x, py, px} : new SDVariable[]{x, py, px, scale});
            addIArgument(groups);
        }

        @Override
        public String opName() {
            return OP_NAME;
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            long[] p = in.get(1);
            long g = iArgs()[0];
            return List.of(new long[]{x[0], g, p[2], x[1] / g});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Layout l = Layout.of(in.get(0).shape(), in.get(1).shape(), (int) iArgs()[0]);
            HostOp.Host x = HostOp.Host.of(in.get(0), false);
            HostOp.Host py = HostOp.Host.of(in.get(1), false);
            HostOp.Host px = HostOp.Host.of(in.get(2), false);
            HostOp.Host scale = in.size() > 3 ? HostOp.Host.of(in.get(3), false) : null;
            HostOp.Host y = HostOp.Host.of(out.get(0), true);
            int cg = l.cg();
            HostOp.parallelFor(l.tasks(), task -> {
                int chunk = task % l.chunks;
                int ng = task / l.chunks;
                int n = ng / l.g;
                int grp = ng % l.g;
                int c0 = l.c0(chunk);
                int cc = l.c0(chunk + 1) - c0;
                double[] xs = channelsLast(x, l, n, grp * cg + c0, cc);
                Point pt = new Point();
                for (int p = 0; p < l.p; p++) {
                    int pi = ng * l.p + p;
                    pt.set(py.get(pi), px.get(pi), scale == null ? 1.0 : scale.get(pi), l.h, l.w, cc);
                    double w00 = (1 - pt.ly) * (1 - pt.lx) * pt.s;
                    double w01 = (1 - pt.ly) * pt.lx * pt.s;
                    double w10 = pt.ly * (1 - pt.lx) * pt.s;
                    double w11 = pt.ly * pt.lx * pt.s;
                    int ob = pi * cg + c0;
                    for (int c = 0; c < cc; c++) {
                        y.set(ob + c, w00 * corner(xs, pt.o00, c) + w01 * corner(xs, pt.o01, c)
                                + w10 * corner(xs, pt.o10, c) + w11 * corner(xs, pt.o11, c));
                    }
                }
            });
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            List<SDVariable> args = new ArrayList<>(List.of(args()));
            args.add(grads.get(0));
            SDVariable[] g = new Backward(sameDiff, args.toArray(new SDVariable[0]), (int) iArgs()[0])
                    .outputVariables();
            return List.of(g);
        }
    }

    /**
     * The gradient op: inputs {@code x, py, px, [scale], gradOut}; outputs {@code dx, dpy, dpx, [dscale]}.
     */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_bilinear_sample_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable[] args, int groups) {
            super(sd, args);
            addIArgument(groups, args.length - 4);   // groups, whether a scale is given
        }

        @Override
        public String opName() {
            return OP_NAME;
        }

        @Override
        public int getNumOutputs() {
            return iArgs()[1] == 1 ? 4 : 3;
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
            Layout l = Layout.of(in.get(0).shape(), in.get(1).shape(), (int) iArgs()[0]);
            boolean scaled = in.size() == 5;
            HostOp.Host x = HostOp.Host.of(in.get(0), false);
            HostOp.Host py = HostOp.Host.of(in.get(1), false);
            HostOp.Host px = HostOp.Host.of(in.get(2), false);
            HostOp.Host scale = scaled ? HostOp.Host.of(in.get(3), false) : null;
            HostOp.Host gOut = HostOp.Host.of(in.get(in.size() - 1), false);
            HostOp.Host dx = HostOp.Host.of(out.get(0), true);
            int cg = l.cg();
            int points = l.n * l.g * l.p;
            // per channel range: its share of the coordinate (and scale) gradients, summed below
            double[][] dy = new double[l.chunks][points];
            double[][] dxc = new double[l.chunks][points];
            double[][] ds = scaled ? new double[l.chunks][points] : null;
            HostOp.parallelFor(l.tasks(), task -> {
                int chunk = task % l.chunks;
                int ng = task / l.chunks;
                int n = ng / l.g;
                int grp = ng % l.g;
                int c0 = l.c0(chunk);
                int cc = l.c0(chunk + 1) - c0;
                int first = grp * cg + c0;
                double[] xs = channelsLast(x, l, n, first, cc);
                double[] gx = new double[xs.length];
                Point pt = new Point();
                for (int p = 0; p < l.p; p++) {
                    int pi = ng * l.p + p;
                    pt.set(py.get(pi), px.get(pi), scaled ? scale.get(pi) : 1.0, l.h, l.w, cc);
                    double ly = pt.ly, lx = pt.lx;
                    double u00 = (1 - ly) * (1 - lx), u01 = (1 - ly) * lx, u10 = ly * (1 - lx), u11 = ly * lx;
                    double sy = 0, sx = 0, ss = 0;
                    int ob = pi * cg + c0;
                    for (int c = 0; c < cc; c++) {
                        double go = gOut.get(ob + c);
                        double v00 = corner(xs, pt.o00, c), v01 = corner(xs, pt.o01, c);
                        double v10 = corner(xs, pt.o10, c), v11 = corner(xs, pt.o11, c);
                        double gs = go * pt.s;
                        if (pt.o00 >= 0) {
                            gx[pt.o00 + c] += gs * u00;
                        }
                        if (pt.o01 >= 0) {
                            gx[pt.o01 + c] += gs * u01;
                        }
                        if (pt.o10 >= 0) {
                            gx[pt.o10 + c] += gs * u10;
                        }
                        if (pt.o11 >= 0) {
                            gx[pt.o11 + c] += gs * u11;
                        }
                        sy += go * ((1 - lx) * (v10 - v00) + lx * (v11 - v01));
                        sx += go * ((1 - ly) * (v01 - v00) + ly * (v11 - v10));
                        ss += go * (u00 * v00 + u01 * v01 + u10 * v10 + u11 * v11);
                    }
                    dy[chunk][pi] = sy * pt.s;
                    dxc[chunk][pi] = sx * pt.s;
                    if (scaled) {
                        ds[chunk][pi] = ss;
                    }
                }
                int hw = l.h * l.w;
                for (int c = 0; c < cc; c++) {
                    int base = (n * l.c + first + c) * hw;
                    for (int i = 0; i < hw; i++) {
                        dx.set(base + i, gx[i * cc + c]);
                    }
                }
            });
            writeSum(dy, HostOp.Host.of(out.get(1), true));
            writeSum(dxc, HostOp.Host.of(out.get(2), true));
            if (scaled) {
                writeSum(ds, HostOp.Host.of(out.get(3), true));
            }
        }

        private static void writeSum(double[][] parts, HostOp.Host target) {
            for (int i = 0; i < parts[0].length; i++) {
                double s = 0;
                for (double[] part : parts) {
                    s += part[i];
                }
                target.set(i, s);
            }
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives of bilinear sampling are not supported");
        }
    }
}
