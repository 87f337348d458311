package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.List;

/**
 * The per-channel arithmetic of the training BatchNorm's gradient as one {@link HostOp} each, in place of a dozen
 * SameDiff ops on {@code [C]}-sized arrays (each of which costs SameDiff's session ~0.1 ms however small it is:
 * RFB's gradient function had ~500 ops, most of them these). The full-size passes stay native.
 *
 * <ul>
 *   <li>{@link Normalisation}: from {@code S = sum(g)}, {@code G = dot(g, x)} over {@code (N, H, W)}, the batch
 *       {@code mean}, {@code var}, {@code gamma} ({@code [C]} each) and {@code eps}, with {@code r = 1 / sqrt(var + eps)},
 *       {@code D = G - mean S}: {@code {gamma r, -gamma r S, -gamma D r^3 / 2, D r}}, i.e. the scale of {@code dx} and
 *       the gradients of mean, variance and gamma ({@link BatchNormKernel}).</li>
 *   <li>{@link Moments}: from the gradients of the batch mean and variance, {@code mean} ({@code [1, C, 1, 1]} each)
 *       and {@code M = N H W} (from {@code x}'s shape): {@code a = 2 dvar / M}, {@code b = dmean / M - a mean}, so
 *       that {@code dx = x a + b} ({@link BatchMoments}).</li>
 * </ul>
 * Computed in double, whatever the data type. Built only where {@link HostOp#usableIn} allows; the composite forms
 * stay for the other cases.
 */
public final class BatchNormGrads {
    private BatchNormGrads() {
    }

    /** {@code {gamma r, dmean, dvar, dgamma}}, each {@code [C]}; see the class comment. */
    public static final class Normalisation extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_batchnorm_grads";

        static {
            register(OP_NAME, new Normalisation());
        }

        /** For SameDiff's reflective re-creation only. */
        public Normalisation() {
        }

        Normalisation(SameDiff sd, SDVariable sum, SDVariable dot, SDVariable mean, SDVariable var, SDVariable gamma,
                      SDVariable eps) {
            super(sd, sum, dot, mean, var, gamma, eps);
        }

        @Override
        public int getNumOutputs() {
            return 4;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return Collections.nCopies(4, in.get(0).clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            int c = (int) in.get(0).length();
            double[] s = Host.of(in.get(0), false).all(c);
            double[] dot = Host.of(in.get(1), false).all(c);
            double[] mean = Host.of(in.get(2), false).all(c);
            double[] var = Host.of(in.get(3), false).all(c);
            double[] gamma = Host.of(in.get(4), false).all(c);
            double eps = Host.of(in.get(5), false).all(1)[0];
            double[] gr = new double[c];
            double[] dmean = new double[c];
            double[] dvar = new double[c];
            double[] dgamma = new double[c];
            for (int i = 0; i < c; i++) {
                double r = 1.0 / Math.sqrt(var[i] + eps);
                double d = dot[i] - mean[i] * s[i];
                gr[i] = gamma[i] * r;
                dmean[i] = -gr[i] * s[i];
                dvar[i] = -0.5 * gr[i] * d * r * r;
                dgamma[i] = d * r;
            }
            Host.of(out.get(0), true).set(0, gr, 0, c);
            Host.of(out.get(1), true).set(0, dmean, 0, c);
            Host.of(out.get(2), true).set(0, dvar, 0, c);
            Host.of(out.get(3), true).set(0, dgamma, 0, c);
        }
    }

    /** {@code {a, b}}, each shaped like {@code mean}, with {@code dx = x a + b}; see the class comment. */
    public static final class Moments extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_moments_grads";

        static {
            register(OP_NAME, new Moments());
        }

        /** For SameDiff's reflective re-creation only. */
        public Moments() {
        }

        Moments(SameDiff sd, SDVariable dmean, SDVariable dvar, SDVariable mean, SDVariable x) {
            super(sd, dmean, dvar, mean, x);
        }

        @Override
        public int getNumOutputs() {
            return 2;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return List.of(in.get(2).clone(), in.get(2).clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            int c = (int) in.get(2).length();
            long[] xs = in.get(3).shape();
            double m = (double) in.get(3).length() / xs[1];         // N H W
            double[] dmean = Host.of(in.get(0), false).all(c);
            double[] dvar = Host.of(in.get(1), false).all(c);
            double[] mean = Host.of(in.get(2), false).all(c);
            double[] a = new double[c];
            double[] b = new double[c];
            for (int i = 0; i < c; i++) {
                a[i] = 2.0 * dvar[i] / m;
                b[i] = dmean[i] / m - a[i] * mean[i];
            }
            Host.of(out.get(0), true).set(0, a, 0, c);
            Host.of(out.get(1), true).set(0, b, 0, c);
        }
    }
}
