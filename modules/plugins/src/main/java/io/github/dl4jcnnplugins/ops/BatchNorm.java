package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;

import java.util.List;
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

    /** One {@code BatchNorm2d} module's share of a BatchNorm over concatenated channels: its PyTorch name and size. */
    public record Part(String prefix, long channels) {
    }

    /**
     * @param x        {@code [N, C, H, W]} with {@code H, W} known at build time ({@code hw = H * W})
     * @param prefix   PyTorch name of the BatchNorm2d module, e.g. {@code "primary_conv.1"}
     * @param momentum PyTorch momentum (DL4J's {@code decay} is {@code 1 - momentum})
     * @param activation applied after it ({@link ConvBnAct#activate}; see below)
     */
    public static SDVariable apply(PluginContext ctx, SDVariable x, Map<String, SDVariable> p, String prefix, long c,
                                   long hw, double momentum, double eps, Activation activation) {
        return apply(ctx, x, p, List.of(new Part(prefix, c)), hw, momentum, eps, activation);
    }

    /**
     * Several {@code BatchNorm2d} modules with the same momentum and eps applied to the concatenation of their inputs
     * along the channels ({@code x [N, sum of the parts' channels, H, W]}, the parts in order) as one BatchNorm: the
     * statistics and the normalisation are per channel, so this is each module on its own channels, in one pass over
     * {@code x} instead of one per module (and one op sequence instead of one per module). Each module's running
     * statistics are updated from its channels. Then {@code activation} ({@link ConvBnAct#activate}): a ReLU is
     * part of the BatchNorm's own kernels where {@link BatchNormRelu} applies.
     */
    public static SDVariable apply(PluginContext ctx, SDVariable x, Map<String, SDVariable> p, List<Part> parts,
                                   long hw, double momentum, double eps, Activation activation) {
        SameDiff sd = ctx.sd();
        long c = 0;
        for (Part part : parts) {
            c += part.channels();
        }
        SDVariable gamma = concat(sd, p, parts, ".weight");
        SDVariable beta = concat(sd, p, parts, ".bias");
        if (!ctx.training()) {
            // y = x * scale + shift with per-channel scale = gamma / sqrt(running_var + eps)
            SDVariable g4 = gamma.reshape(1, c, 1, 1);
            SDVariable scale = Mul.same(sd, g4,
                    sd.math().rsqrt(concat(sd, p, parts, ".running_var").reshape(1, c, 1, 1).add(eps)));
            SDVariable shift = beta.reshape(1, c, 1, 1)
                    .sub(Mul.same(sd, concat(sd, p, parts, ".running_mean").reshape(1, c, 1, 1), scale));
            return ConvBnAct.activate(sd, Mul.of(sd, x, scale, 0, 2, 3).add(shift), activation);
        }
        if (BatchNormRelu.applies(sd, x.dataType())) {
            // host kernels, each pass over a channel from the cache, with the ReLU inside (BatchNormRelu)
            boolean relu = activation == Activation.RELU;
            SDVariable[] r = BatchNormRelu.train(sd, x, gamma, beta, eps, relu);
            addRunningStatUpdates(ctx, parts, r[1], r[2], momentum, hw);
            return relu ? r[0] : ConvBnAct.activate(sd, r[0], activation);
        }
        // The batch moments from one op whose gradient is written out (BatchMoments: no reduce_mean_bp / variance
        // gradient kernels), then the normalisation in one kernel that centres x before scaling (a large mean does
        // not cancel digits in float) and has a written-out gradient (BatchNormKernel).
        SDVariable[] moments = BatchMoments.of(sd, x);
        SDVariable batchMean = moments[0];
        SDVariable batchVar = moments[1];
        addRunningStatUpdates(ctx, parts, batchMean, batchVar, momentum, hw);
        return ConvBnAct.activate(sd,
                BatchNormKernel.apply(sd, x, batchMean.reshape(c), batchVar.reshape(c), gamma, beta, eps), activation);
    }

    /** Each part's running mean and variance follow its channels of the batch {@code mean} and biased {@code var}. */
    private static void addRunningStatUpdates(PluginContext ctx, List<Part> parts, SDVariable mean, SDVariable var,
                                              double momentum, long hw) {
        long offset = 0;
        for (Part part : parts) {
            ctx.addRunningStatUpdate(ParamSpec.key(part.prefix() + ".running_mean"), mean, offset, momentum, 0);
            ctx.addRunningStatUpdate(ParamSpec.key(part.prefix() + ".running_var"), var, offset, momentum, hw);
            offset += part.channels();
        }
    }

    /** The parts' {@code [C]} parameters named {@code prefix + suffix}, concatenated (the one itself for one part). */
    private static SDVariable concat(SameDiff sd, Map<String, SDVariable> p, List<Part> parts, String suffix) {
        SDVariable[] v = new SDVariable[parts.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = p.get(ParamSpec.key(parts.get(i).prefix() + suffix)).reshape(parts.get(i).channels());
        }
        return v.length == 1 ? v[0] : sd.concat(0, v);
    }
}
