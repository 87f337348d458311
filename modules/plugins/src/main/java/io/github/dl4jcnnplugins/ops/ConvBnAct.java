package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Convolution without bias, then {@code BatchNorm2d}, then an activation: the block that RFBNet calls
 * {@code BasicConv}, GhostNet writes as {@code nn.Sequential(conv, bn, relu)} and YOLOv5 calls {@code Conv}
 * (with SiLU). Written once here; a plug-in describes each block with one instance and uses it both for its
 * parameters ({@link #params()}) and its graph ({@link #apply}).
 *
 * <pre>
 *   y = act(BN(conv2d(x, W)))      W: [out, in / groups, kH, kW] (convName + ".weight")
 *                                  BN: bnName + ".{weight, bias, running_mean, running_var}", PyTorch semantics
 * </pre>
 *
 * @param convName   PyTorch name of the {@code Conv2d} module (its weight is {@code convName + ".weight"})
 * @param bnName     PyTorch name of the {@code BatchNorm2d} module
 * @param in         input channels
 * @param out        output channels
 * @param conv       kernel, stride, padding, dilation and groups of the convolution
 * @param momentum   BatchNorm momentum, PyTorch convention ({@code running = (1 - m) running + m batch})
 * @param eps        BatchNorm epsilon
 * @param activation {@link Activation#IDENTITY}, {@link Activation#RELU}, {@link Activation#SWISH} (= SiLU),
 *                   {@link Activation#SIGMOID} or {@link Activation#TANH}
 */
public record ConvBnAct(String convName, String bnName, long in, long out, Conv.Spec conv, double momentum, double eps,
                        Activation activation) {

    public ConvBnAct {
        if (activation == null) {
            activation = Activation.IDENTITY;
        }
        switch (activation) {
            case IDENTITY, RELU, SWISH, SIGMOID, TANH -> {
            }
            default -> throw new IllegalArgumentException("ConvBnAct '" + convName + "': activation " + activation
                    + " is not supported; use IDENTITY, RELU, SWISH (SiLU), SIGMOID or TANH");
        }
    }

    /** A block whose modules are {@code prefix.conv} and {@code prefix.bn} (RFBNet's BasicConv, YOLOv5's Conv). */
    public static ConvBnAct named(String prefix, long in, long out, Conv.Spec conv, double momentum, double eps,
                                  Activation activation) {
        return new ConvBnAct(prefix + ".conv", prefix + ".bn", in, out, conv, momentum, eps, activation);
    }

    /** A block written as {@code nn.Sequential(conv, bn, act)}: modules {@code prefix.0} and {@code prefix.1}. */
    public static ConvBnAct sequential(String prefix, long in, long out, Conv.Spec conv, double momentum, double eps,
                                       Activation activation) {
        return new ConvBnAct(prefix + ".0", prefix + ".1", in, out, conv, momentum, eps, activation);
    }

    /** The convolution weight, then the BatchNorm's four entries (state_dict order). */
    public List<ParamSpec> params() {
        List<ParamSpec> l = new ArrayList<>();
        l.add(ParamSpec.weight(convName + ".weight", out, in / conv.groups(), conv.kH(), conv.kW()));
        l.addAll(ParamSpec.batchNorm(bnName, out));
        return l;
    }

    /** The parameters of several blocks, in order. */
    public static List<ParamSpec> params(List<ConvBnAct> blocks) {
        List<ParamSpec> l = new ArrayList<>();
        for (ConvBnAct b : blocks) {
            l.addAll(b.params());
        }
        return l;
    }

    public long outH(long h) {
        return conv.outH(h);
    }

    public long outW(long w) {
        return conv.outW(w);
    }

    /**
     * The block on {@code x [N, in, h, w]} ({@code h, w} known when the graph is built; BatchNorm needs the
     * number of values per channel for the unbiased running variance).
     *
     * @return {@code [N, out, outH(h), outW(w)]}
     */
    public SDVariable apply(PluginContext ctx, SDVariable x, Map<String, SDVariable> p, long h, long w) {
        SDVariable y = convolve(ctx.sd(), x, p, h, w);
        return BatchNorm.apply(ctx, y, p, bnName, out, outH(h) * outW(w), momentum, eps, activation);
    }

    /** The block's convolution alone. */
    private SDVariable convolve(SameDiff sd, SDVariable x, Map<String, SDVariable> p, long h, long w) {
        return Conv.conv2d(sd, x, p.get(ParamSpec.key(convName + ".weight")), null, in, out, conv, h, w);
    }

    /**
     * Blocks that read the same input {@code x [N, in, h, w]} with the same convolution hyper-parameters, activation
     * and BatchNorm settings (RFB's 1x1 branch heads), computed as one block: the weights concatenated along the output
     * channels, one convolution, one BatchNorm over all the blocks' channels and the activation
     * ({@link BatchNorm#apply(PluginContext, SDVariable, Map, List, long, double, double, Activation)}: per channel,
     * so each block's own), then each block's channels sliced out. The same values as the blocks one by one, with one
     * op sequence instead of one per block and one larger product in place of several small ones.
     *
     * @return each block's output, in order
     */
    public static SDVariable[] applyParallel(PluginContext ctx, SDVariable x, Map<String, SDVariable> p, long h, long w,
                                             List<ConvBnAct> blocks) {
        ConvBnAct first = blocks.get(0);
        if (blocks.size() == 1) {
            return new SDVariable[]{first.apply(ctx, x, p, h, w)};
        }
        SameDiff sd = ctx.sd();
        SDVariable[] weights = new SDVariable[blocks.size()];
        long total = 0;
        for (int i = 0; i < weights.length; i++) {
            ConvBnAct b = blocks.get(i);
            if (b.in != first.in || !b.conv.equals(first.conv) || b.activation != first.activation
                    || b.momentum != first.momentum || b.eps != first.eps) {
                throw new IllegalArgumentException("ConvBnAct.applyParallel: block '" + b.convName + "' differs from '"
                        + first.convName + "' in more than its output channels");
            }
            weights[i] = p.get(ParamSpec.key(b.convName + ".weight"));
            total += b.out;
        }
        SDVariable y = Conv.conv2d(sd, x, sd.concat(0, weights), null, first.in, total, first.conv, h, w);
        y = BatchNorm.apply(ctx, y, p, bnParts(blocks), first.outH(h) * first.outW(w), first.momentum, first.eps,
                first.activation);
        SDVariable[] outs = new SDVariable[blocks.size()];
        long from = 0;
        for (int i = 0; i < outs.length; i++) {
            long to = from + blocks.get(i).out;
            outs[i] = y.get(SDIndex.all(), SDIndex.interval(from, to), SDIndex.all(), SDIndex.all());
            from = to;
        }
        return outs;
    }

    /**
     * Blocks with the same activation and BatchNorm settings, each on its own input ({@code xs[i] [N, in_i, h_i, w_i]},
     * all giving the same output size), whose outputs are concatenated along the channels (RFB's branch tails): the
     * convolutions one by one, concatenated, then one BatchNorm and one activation over all channels (as
     * {@link #applyParallel}).
     *
     * @return the concatenated outputs, {@code [N, sum of out, H', W']}
     */
    public static SDVariable applyConcatenated(PluginContext ctx, List<SDVariable> xs, Map<String, SDVariable> p,
                                               long[] hs, long[] ws, List<ConvBnAct> blocks) {
        ConvBnAct first = blocks.get(0);
        SDVariable[] ys = new SDVariable[blocks.size()];
        for (int i = 0; i < ys.length; i++) {
            ConvBnAct b = blocks.get(i);
            if (b.activation != first.activation || b.momentum != first.momentum || b.eps != first.eps
                    || b.outH(hs[i]) != first.outH(hs[0]) || b.outW(ws[i]) != first.outW(ws[0])) {
                throw new IllegalArgumentException("ConvBnAct.applyConcatenated: block '" + b.convName
                        + "' differs from '" + first.convName + "' in output size, activation or BatchNorm settings");
            }
            ys[i] = b.convolve(ctx.sd(), xs.get(i), p, hs[i], ws[i]);
        }
        SDVariable y = ys.length == 1 ? ys[0] : ctx.sd().concat(1, ys);
        return BatchNorm.apply(ctx, y, p, bnParts(blocks), first.outH(hs[0]) * first.outW(ws[0]), first.momentum,
                first.eps, first.activation);
    }

    private static List<BatchNorm.Part> bnParts(List<ConvBnAct> blocks) {
        List<BatchNorm.Part> parts = new ArrayList<>();
        for (ConvBnAct b : blocks) {
            parts.add(new BatchNorm.Part(b.bnName, b.out));
        }
        return parts;
    }

    /** {@code activation} applied in SameDiff (the subset {@link ConvBnAct} supports). */
    public static SDVariable activate(SameDiff sd, SDVariable x, Activation activation) {
        return switch (activation) {
            case IDENTITY -> x;
            case RELU -> Relu.apply(sd, x);
            case SWISH -> DirectEltwise.applies(sd, x.dataType()) ? DirectEltwise.apply(sd, x, Dnnl.Eltwise.SILU)
                    : Mul.same(sd, x, sd.nn().sigmoid(x));
            case SIGMOID -> sd.nn().sigmoid(x);
            case TANH -> sd.math().tanh(x);
            default -> throw new IllegalArgumentException("activation " + activation + " is not supported");
        };
    }
}
