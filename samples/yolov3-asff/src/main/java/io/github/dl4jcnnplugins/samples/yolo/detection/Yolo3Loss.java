package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Broadcast;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.List;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;
import static org.nd4j.linalg.indexing.NDArrayIndex.point;

/**
 * The math of {@link Yolo3OutputLayer}: activation, the YOLOv3 loss (Redmon &amp; Farhadi 2018, arXiv:1804.02767)
 * and its gradient with respect to the layer input, in one pass. All arrays are NCHW; the input is
 * {@code [N, B*(5+C), H, W]}, viewed as {@code [N, B, 5+C, H, W]}.
 *
 * <p>Work over the whole prediction tensor is vectorised with ND4J (activation, the objectness BCE of every
 * prediction, the ignore mask from the IoU of every decoded box with every true box of its image). The position,
 * size and class terms only concern the responsible prior of each labelled cell; they are computed in a loop over
 * those cells (a few per image), in double precision.
 */
final class Yolo3Loss {
    private Yolo3Loss() {
    }

    /**
     * Per-example loss (before the division by N) and, if asked for, the gradient of the summed loss with respect
     * to the input.
     */
    record Result(double[] perExample, INDArray gradient) {
        double sum() {
            double s = 0;
            for (double v : perExample) {
                s += v;
            }
            return s;
        }
    }

    /** The responsible prediction of one labelled cell and its targets. */
    private record Target(int example, int prior, int row, int col, double offsetX, double offsetY,
                          double logW, double logH, double weight, double[] classes,
                          double x1, double y1, double x2, double y2) {
    }

    /**
     * The activated output into {@code out} (same shape as {@code input}, c order): sigmoid on x, y, objectness
     * and every class, prior x exp on w and h.
     */
    static INDArray activate(INDArray input, double[][] priors, INDArray out) {
        int b = priors.length;
        long[] s = input.shape();
        out.assign(input);
        INDArray out5 = out.reshape('c', s[0], b, s[1] / b, s[2], s[3]);
        Transforms.sigmoid(out5.get(all(), all(), interval(0, 2), all(), all()), false);
        Transforms.sigmoid(out5.get(all(), all(), interval(4, s[1] / b), all(), all()), false);
        INDArray wh = out5.get(all(), all(), interval(2, 4), all(), all());
        Transforms.exp(wh, false);
        Broadcast.mul(wh, Nd4j.create(priors).castTo(input.dataType()), wh, 1, 2);
        return out;
    }

    /**
     * The loss of {@code input} against {@code labels} (validated by the caller: same N, H, W and
     * {@code input channels = B*(5+C)}, {@code labels channels = 4+C}).
     *
     * @param gradient {@code null} for the score only, else a zero-filled c-order array shaped like the input that
     *                 receives d(sum of the per-example losses)/d(input)
     */
    static Result compute(Yolo3OutputLayer conf, INDArray input, INDArray labels, INDArray gradient) {
        double[][] priors = Yolo3OutputLayer.priorArray(conf.getPriors());
        DataType dt = input.dataType();
        int n = (int) input.size(0), h = (int) input.size(2), w = (int) input.size(3);
        int b = priors.length, per = (int) input.size(1) / b, c = per - 5;
        List<Target> targets = targets(conf, labels, priors);

        // objectness: BCE with target 1 on responsible priors, 0 on the rest unless ignored
        INDArray act = activate(input, priors, Nd4j.createUninitialized(dt, input.shape(), 'c'));
        INDArray act5 = act.reshape('c', n, b, per, h, w);
        INDArray logits = objectness(input, b);
        INDArray obj = Nd4j.zeros(dt, n, b, h, w);
        for (Target t : targets) {
            obj.putScalar(new long[]{t.example, t.prior, t.row, t.col}, 1.0);
        }
        INDArray noObj = obj.rsub(1.0);
        if (!targets.isEmpty() && conf.getIgnoreThreshold() < 1) {
            INDArray ignored = bestIou(act5, targets, n).gt(conf.getIgnoreThreshold()).castTo(dt).reshape('c', n, b, h, w);
            noObj.muli(ignored.rsubi(1.0));
        }
        INDArray softplus = softplus(logits);
        INDArray objLoss = softplus.mul(noObj).muli(conf.getLambdaNoObj())
                .addi(softplus.sub(logits).muli(obj).muli(conf.getLambdaObj()));
        double[] perExample = objLoss.sum(1, 2, 3).castTo(DataType.DOUBLE).toDoubleVector();

        if (gradient != null) {
            INDArray sigmoid = objectness(act, b);
            INDArray dObj = sigmoid.mul(noObj).muli(conf.getLambdaNoObj())
                    .addi(sigmoid.sub(1.0).muli(obj).muli(conf.getLambdaObj()));
            objectness(gradient, b).assign(dObj);
        }

        // position, size and classes of the responsible priors
        double lc = conf.getLambdaCoord(), lcls = conf.getLambdaClass();
        for (Target t : targets) {
            int base = t.prior * per;
            double[] z = new double[per];
            for (int k = 0; k < per; k++) {
                z[k] = input.getDouble(t.example, base + k, t.row, t.col);
            }
            double coord = lc * t.weight;
            double dw = z[2] - t.logW, dh = z[3] - t.logH;
            double loss = coord * (bce(z[0], t.offsetX) + bce(z[1], t.offsetY) + dw * dw + dh * dh);
            double[] g = new double[per];
            g[0] = coord * (sigmoid(z[0]) - t.offsetX);
            g[1] = coord * (sigmoid(z[1]) - t.offsetY);
            g[2] = coord * 2 * dw;
            g[3] = coord * 2 * dh;
            for (int k = 0; k < c; k++) {
                loss += lcls * bce(z[5 + k], t.classes[k]);
                g[5 + k] = lcls * (sigmoid(z[5 + k]) - t.classes[k]);
            }
            perExample[t.example] += loss;
            if (gradient != null) {
                for (int k = 0; k < per; k++) {
                    if (k != 4) {   // objectness was written above
                        gradient.putScalar(new long[]{t.example, base + k, t.row, t.col}, g[k]);
                    }
                }
            }
        }
        return new Result(perExample, gradient);
    }

    /** The objectness channels {@code 4, 4 + (5+C), ...} of {@code [N, B*(5+C), H, W]}: a {@code [N, B, H, W]} view. */
    private static INDArray objectness(INDArray x, int b) {
        long per = x.size(1) / b;
        return x.get(all(), interval(4, per, b * per, false), all(), all());
    }

    /**
     * The labelled cells of {@code labels [N, 4+C, H, W]} and their responsible priors (best shape IoU), in
     * example-major order.
     */
    private static List<Target> targets(Yolo3OutputLayer conf, INDArray labels, double[][] priors) {
        int n = (int) labels.size(0), c = (int) labels.size(1) - 4, h = (int) labels.size(2), w = (int) labels.size(3);
        int plane = h * w;
        double[] v = labels.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        List<Target> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int o = i * (4 + c) * plane + y * w + x;
                    double[] cls = new double[c];
                    boolean present = false;
                    for (int k = 0; k < c; k++) {
                        cls[k] = v[o + (4 + k) * plane];
                        present |= cls[k] != 0;
                    }
                    if (!present) {
                        continue;
                    }
                    double x1 = v[o], y1 = v[o + plane], x2 = v[o + 2 * plane], y2 = v[o + 3 * plane];
                    double bw = x2 - x1, bh = y2 - y1;
                    if (!(bw > 0 && bh > 0)) {
                        throw new IllegalArgumentException(conf.describe() + ": the labelled cell (example " + i + ", row "
                                + y + ", column " + x + ") has the box [" + x1 + ", " + y1 + ", " + x2 + ", " + y2
                                + "]; labels need x2 > x1 and y2 > y1 (corners in grid units)");
                    }
                    int best = Box.bestShape(bw, bh, priors);
                    double ox = Math.min(1, Math.max(0, (x1 + x2) / 2 - x));
                    double oy = Math.min(1, Math.max(0, (y1 + y2) / 2 - y));
                    out.add(new Target(i, best, y, x, ox, oy, Math.log(bw / priors[best][0]), Math.log(bh / priors[best][1]),
                            2 - bw * bh / ((double) h * w), cls, x1, y1, x2, y2));
                }
            }
        }
        return out;
    }

    /**
     * For every prediction, the best IoU of its decoded box with any true box of the same image: {@code [N, B*H*W]}.
     * The true boxes of each image are padded to the largest count with empty boxes far outside the grid.
     */
    private static INDArray bestIou(INDArray act5, List<Target> targets, int n) {
        long b = act5.size(1), h = act5.size(3), w = act5.size(4);
        DataType dt = act5.dataType();
        int[] count = new int[n];
        for (Target t : targets) {
            count[t.example]++;
        }
        int tMax = 0;
        for (int k : count) {
            tMax = Math.max(tMax, k);
        }
        double far = -1e4;
        double[][] tx1 = filled(n, tMax, far), ty1 = filled(n, tMax, far), tx2 = filled(n, tMax, far), ty2 = filled(n, tMax, far);
        int[] next = new int[n];
        for (Target t : targets) {
            int j = next[t.example]++;
            tx1[t.example][j] = t.x1;
            ty1[t.example][j] = t.y1;
            tx2[t.example][j] = t.x2;
            ty2[t.example][j] = t.y2;
        }
        // decoded prediction corners [N, B*H*W]
        INDArray grid = Nd4j.createUninitialized(dt, 2, h, w);
        INDArray gx = grid.get(point(0), all(), all()), gy = grid.get(point(1), all(), all());
        Broadcast.copy(gx, Nd4j.linspace(0, w - 1, w, dt), gx, 1);
        Broadcast.copy(gy, Nd4j.linspace(0, h - 1, h, dt), gy, 0);
        INDArray centre = act5.get(all(), all(), interval(0, 2), all(), all()).dup('c');
        Broadcast.add(centre, grid, centre, 2, 3, 4);
        INDArray half = act5.get(all(), all(), interval(2, 4), all(), all()).mul(0.5);
        INDArray lo = centre.sub(half), hi = centre.add(half);
        long p = b * h * w;
        INDArray px1 = flat(lo, 0, n, p), py1 = flat(lo, 1, n, p), px2 = flat(hi, 0, n, p), py2 = flat(hi, 1, n, p);
        INDArray predArea = px2.sub(px1).muli(py2.sub(py1));

        INDArray tX1 = Nd4j.create(tx1).castTo(dt), tY1 = Nd4j.create(ty1).castTo(dt);   // [N, T]
        INDArray tX2 = Nd4j.create(tx2).castTo(dt), tY2 = Nd4j.create(ty2).castTo(dt);
        INDArray inter = overlap(px1, px2, tX1, tX2, tMax).muli(overlap(py1, py2, tY1, tY2, tMax));   // [N, T, P]
        INDArray trueArea = tX2.sub(tX1).muli(tY2.sub(tY1));
        INDArray union = alongT(predArea, tMax);
        Broadcast.add(union, trueArea, union, 0, 1);
        union.subi(inter);
        return inter.divi(union).max(1);
    }

    /** {@code max(0, min(hiP, hiT) - max(loP, loT))} as {@code [N, T, P]}; predictions {@code [N, P]}, truths {@code [N, T]}. */
    private static INDArray overlap(INDArray loP, INDArray hiP, INDArray loT, INDArray hiT, int tMax) {
        INDArray hi = alongT(hiP, tMax);
        Broadcast.min(hi, hiT, hi, 0, 1);
        INDArray lo = alongT(loP, tMax);
        Broadcast.max(lo, loT, lo, 0, 1);
        return Transforms.relu(hi.subi(lo), false);
    }

    /** {@code [N, P]} repeated along a new middle axis: {@code [N, T, P]}. */
    private static INDArray alongT(INDArray pred, int tMax) {
        INDArray out = Nd4j.createUninitialized(pred.dataType(), pred.size(0), tMax, pred.size(1));
        Broadcast.copy(out, pred, out, 0, 2);
        return out;
    }

    /** Coordinate {@code k} of {@code [N, B, 2, H, W]} as {@code [N, B*H*W]}. */
    private static INDArray flat(INDArray corners, int k, int n, long p) {
        return corners.get(all(), all(), point(k), all(), all()).dup('c').reshape('c', n, p);
    }

    private static double[][] filled(int rows, int cols, double v) {
        double[][] a = new double[rows][cols];
        for (double[] r : a) {
            java.util.Arrays.fill(r, v);
        }
        return a;
    }

    /** Numerically stable {@code log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))}, elementwise, new array. */
    static INDArray softplus(INDArray z) {
        INDArray tail = Transforms.log1p(Transforms.exp(Transforms.abs(z, true).negi(), false), false);
        return Transforms.relu(z, true).addi(tail);
    }

    static double softplus(double z) {
        return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    /** BCE with logits: {@code -t log(sigmoid(z)) - (1 - t) log(1 - sigmoid(z)) = softplus(z) - t z}. */
    static double bce(double z, double t) {
        return softplus(z) - t * z;
    }

    static double sigmoid(double z) {
        if (z >= 0) {
            return 1 / (1 + Math.exp(-z));
        }
        double e = Math.exp(z);
        return e / (1 + e);
    }
}
