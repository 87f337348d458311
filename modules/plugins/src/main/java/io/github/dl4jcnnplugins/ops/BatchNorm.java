package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Map;

/**
 * {@code BatchNorm2d} with PyTorch's training semantics, for use inside a plug-in's graph.
 *
 * <p>Training forward: normalise with the batch mean and the biased batch variance over (N, H, W); the
 * runtime then updates {@code running = (1 - momentum) * running + momentum * batch} with the unbiased
 * variance. Inference: normalise with the running statistics. Which of the two is built depends on
 * {@link PluginContext#training()} (the runtime builds one graph per mode). The four parameters are the ones
 * {@link ParamSpec#batchNorm(String, long)} declares under the same PyTorch prefix.
 */
public final class BatchNorm {
    private BatchNorm() {
    }

    /**
     * @param x        {@code [N, C, H, W]} with {@code H, W} known at build time ({@code hw = H * W})
     * @param prefix   PyTorch name of the BatchNorm2d module, e.g. {@code "primary_conv.1"}
     * @param momentum PyTorch momentum (DL4J's {@code decay} is {@code 1 - momentum})
     */
    public static SDVariable apply(PluginContext ctx, SDVariable x, Map<String, SDVariable> p, String prefix, long c,
                                   long hw, double momentum, double eps) {
        SameDiff sd = ctx.sd();
        SDVariable gamma = p.get(ParamSpec.key(prefix + ".weight")).reshape(1, c, 1, 1);
        SDVariable beta = p.get(ParamSpec.key(prefix + ".bias")).reshape(1, c, 1, 1);
        String meanKey = ParamSpec.key(prefix + ".running_mean");
        String varKey = ParamSpec.key(prefix + ".running_var");
        if (!ctx.training()) {
            // y = x * scale + shift with per-channel scale = gamma / sqrt(running_var + eps)
            SDVariable scale = Mul.same(sd, gamma, sd.math().rsqrt(p.get(varKey).reshape(1, c, 1, 1).add(eps)));
            SDVariable shift = beta.sub(Mul.same(sd, p.get(meanKey).reshape(1, c, 1, 1), scale));
            return Mul.of(sd, x, scale, 0, 2, 3).add(shift);
        }
        // The batch moments from one op whose gradient is written out (BatchMoments: no reduce_mean_bp / variance
        // gradient kernels), then the normalisation in one kernel that centres x before scaling (a large mean does
        // not cancel digits in float) and has a written-out gradient (BatchNormKernel).
        SDVariable[] moments = BatchMoments.of(sd, x);
        SDVariable batchMean = moments[0];
        SDVariable batchVar = moments[1];
        ctx.addRunningStatUpdate(meanKey, batchMean, momentum, 0);
        ctx.addRunningStatUpdate(varKey, batchVar, momentum, hw);
        return BatchNormKernel.apply(sd, x, batchMean.reshape(c), batchVar.reshape(c),
                p.get(ParamSpec.key(prefix + ".weight")).reshape(c), p.get(ParamSpec.key(prefix + ".bias")).reshape(c), eps);
    }
}
