package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
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
        SameDiff sd = ctx.sd();
        SDVariable y = Conv.conv2d(sd, x, p.get(ParamSpec.key(convName + ".weight")), null, in, out, conv, h, w);
        y = BatchNorm.apply(ctx, y, p, bnName, out, outH(h) * outW(w), momentum, eps);
        return activate(sd, y, activation);
    }

    /** {@code activation} applied in SameDiff (the subset {@link ConvBnAct} supports). */
    public static SDVariable activate(SameDiff sd, SDVariable x, Activation activation) {
        return switch (activation) {
            case IDENTITY -> x;
            case RELU -> Relu.apply(sd, x);
            case SWISH -> Mul.same(sd, x, sd.nn().sigmoid(x));
            case SIGMOID -> sd.nn().sigmoid(x);
            case TANH -> sd.math().tanh(x);
            default -> throw new IllegalArgumentException("activation " + activation + " is not supported");
        };
    }
}
