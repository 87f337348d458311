package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * {@code y = (x - mean) / sqrt(var + eps) * gamma + beta} per channel of {@code x [N, C, H, W]} in one pass (libnd4j's
 * {@code batchnorm} kernel, oneDNN's on the oneDNN builds), {@code mean}, {@code var}, {@code gamma}, {@code beta}
 * of shape {@code [C]}; the training BatchNorm's normalisation once {@link BatchMoments} has the batch statistics.
 *
 * <p>Gradient, with {@code r = 1 / sqrt(var + eps)}, {@code S = sum(g)} and {@code D = sum(g (x - mean))} over
 * {@code (N, H, W)} ({@code D} as {@code dot(g, x) - mean S}: one pass less than centring {@code x} again):
 * <pre>
 *   dx = g gamma r    dmean = -gamma r S    dvar = -gamma D r^3 / 2    dgamma = D r    dbeta = S
 * </pre>
 * ({@code mean} and {@code var} then pass theirs on to {@code x} through {@link BatchMoments}.) The per-channel
 * arithmetic is one host op where {@link HostOp#usableIn} allows ({@link BatchNormGrads}). The same BatchNorm
 * written as subtract, product and sum took four forward and about ten backward passes over {@code x}'s size; this
 * takes one and three.
 */
public class BatchNormKernel extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_batchnorm";

    static {
        register(OP_NAME, new BatchNormKernel());
    }

    /** For SameDiff's reflective re-creation only. */
    public BatchNormKernel() {
    }

    private BatchNormKernel(SameDiff sd, SDVariable x, SDVariable mean, SDVariable var, SDVariable gamma,
                            SDVariable beta, double eps) {
        super(sd, x, mean, var, gamma, beta);
        addIArgument(1, 1, 1);   // apply gamma, apply beta, channel axis 1
        addTArgument(eps);
    }

    /** The normalisation of {@code x [N, C, H, W]} with per-channel {@code [C]} statistics and affine parameters. */
    public static SDVariable apply(SameDiff sd, SDVariable x, SDVariable mean, SDVariable var, SDVariable gamma,
                                   SDVariable beta, double eps) {
        return new BatchNormKernel(sd, x, mean, var, gamma, beta, eps).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "batchnorm";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        SDVariable g = grads.get(0);
        SDVariable[] in = args();
        SDVariable x = in[0];
        SDVariable mean = in[1];
        SDVariable var = in[2];
        SDVariable gamma = in[3];
        double eps = tArguments.get(0);
        boolean host = HostOp.usableIn(sameDiff, x.dataType());
        SDVariable s = host ? ChannelStats.sum(sameDiff, g) : g.sum(0, 2, 3);                 // [C]
        SDVariable dot = sameDiff.dot(g, x, 0, 2, 3);                                         // [C]
        SDVariable gr;
        SDVariable dmean;
        SDVariable dvar;
        SDVariable dgamma;
        if (host) {
            SDVariable[] c = new BatchNormGrads.Normalisation(sameDiff, s, dot, mean, var, gamma,
                    sameDiff.constant(Nd4j.scalar(x.dataType(), eps))).outputVariables();
            gr = c[0];
            dmean = c[1];
            dvar = c[2];
            dgamma = c[3];
        } else {
            SDVariable r = sameDiff.math().rsqrt(var.add(eps));                              // [C]
            SDVariable d = dot.sub(mean.mul(s));                                              // [C]
            gr = gamma.mul(r);
            dmean = gr.mul(s).neg();
            dvar = gr.mul(d).mul(r.mul(r)).mul(-0.5);
            dgamma = d.mul(r);
        }
        SDVariable dx = Mul.of(sameDiff, g, gr.reshape(1, -1, 1, 1), 0, 2, 3);
        return Arrays.asList(dx, dmean, dvar, dgamma, s);
    }
}
