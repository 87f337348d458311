package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.ConvBnAct;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.activations.Activation;

import java.util.List;
import java.util.Map;

/**
 * Ghost module: a few "intrinsic" feature maps from an ordinary convolution, the rest ("ghosts") from a cheap
 * depthwise convolution of those.
 *
 * <p>Paper: K. Han, Y. Wang, Q. Tian, J. Guo, C. Xu, C. Xu, "GhostNet: More Features from Cheap Operations",
 * CVPR 2020, <a href="https://arxiv.org/abs/1911.11907">arXiv:1911.11907</a>. Mirrors {@code GhostModule} of the
 * reference ({@code shared/reference/torch_plugins.py}, itself the official GhostNet module).
 *
 * <pre>
 *   init = ceil(nOut / ratio),  cheap = init * (ratio - 1)
 *   x1   = act(BN(conv_k(x,  stride, padding k/2)))             [N, init,  H', W']   primary_conv
 *   x2   = act(BN(depthwise_dw(x1, multiplier ratio - 1)))      [N, cheap, H', W']   cheap_operation (groups = init)
 *   out  = cat([x1, x2], dim=1)[:, :nOut]                       [N, nOut,  H', W']
 * </pre>
 * with {@code H' = floor((H + 2 (k/2) - k) / stride) + 1} (same for W) and {@code act} = ReLU when {@code relu}
 * (the default), the identity otherwise. Convolutions have no bias; BatchNorm follows PyTorch (batch statistics
 * and running-statistic updates in training, running statistics in inference).
 *
 * <p>Parameters (DL4J key = {@link ParamSpec#key PyTorch name}): {@code primary_conv.0.weight}
 * {@code [init, C, k, k]}, {@code primary_conv.1.{weight, bias, running_mean, running_var}} {@code [init]},
 * {@code cheap_operation.0.weight} {@code [cheap, 1, dw, dw]},
 * {@code cheap_operation.1.{weight, bias, running_mean, running_var}} {@code [cheap]}.
 *
 * <pre>{@code
 * .addLayer("ghost", new GhostModule.Builder().nOut(64).ratio(2).dwSize(3).build(), "conv1")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class GhostModule extends PluginLayer {
    public static final String PRIMARY = "primary_conv";
    public static final String CHEAP = "cheap_operation";
    public static final String PRIMARY_WEIGHT = ParamSpec.key(PRIMARY + ".0.weight");
    public static final String CHEAP_WEIGHT = ParamSpec.key(CHEAP + ".0.weight");

    private long nOut;
    private int kernelSize = 1;
    private int ratio = 2;
    private int dwSize = 3;
    private int stride = 1;
    /** ReLU after both BatchNorms (default true); identity otherwise. */
    private boolean relu = true;
    private double bnMomentum = 0.1;
    private double bnEps = 1e-5;

    private GhostModule(Builder b) {
        super(b);
        this.nOut = b.nOut;
        this.kernelSize = b.kernelSize;
        this.ratio = b.ratio;
        this.dwSize = b.dwSize;
        this.stride = b.stride;
        this.relu = b.relu;
        this.bnMomentum = b.bnMomentum;
        this.bnEps = b.bnEps;
    }

    /** Channels of the primary convolution, {@code ceil(nOut / ratio)}. */
    public long initChannels() {
        return (nOut + ratio - 1) / ratio;
    }

    /** Channels of the cheap operation, {@code initChannels * (ratio - 1)}. */
    public long cheapChannels() {
        return initChannels() * (ratio - 1);
    }

    private Activation act() {
        return relu ? Activation.RELU : Activation.IDENTITY;
    }

    private ConvBnAct primary() {
        return ConvBnAct.sequential(PRIMARY, nIn, initChannels(), Conv.Spec.of(kernelSize, stride, kernelSize / 2),
                bnMomentum, bnEps, act());
    }

    private ConvBnAct cheap() {
        long init = initChannels();
        return ConvBnAct.sequential(CHEAP, init, cheapChannels(), Conv.Spec.of(dwSize, 1, dwSize / 2, 1, (int) init),
                bnMomentum, bnEps, act());
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "nOut", nOut);
        Shapes.requirePositive(this, "kernelSize", kernelSize);
        if (ratio < 2) {
            throw error("invalid value for `ratio`: expected a value >= 2 (ratio 1 leaves no ghost features); got ratio="
                    + ratio);
        }
        Shapes.requirePositive(this, "dwSize", dwSize);
        if (dwSize % 2 == 0) {
            throw error("invalid value for `dwSize`: expected an odd size (the cheap operation must keep the spatial "
                    + "size); got dwSize=" + dwSize);
        }
        Shapes.requirePositive(this, "stride", stride);
        if (!(bnMomentum >= 0 && bnMomentum <= 1)) {
            throw error("invalid value for `bnMomentum`: expected a value in [0, 1]; got bnMomentum=" + bnMomentum);
        }
        if (!(bnEps > 0)) {
            throw error("invalid value for `bnEps`: expected a strictly positive value; got bnEps=" + bnEps);
        }
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", kernelSize=" + kernelSize + ", ratio=" + ratio + ", dwSize=" + dwSize
                + ", stride=" + stride + ", relu=" + relu;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return ConvBnAct.params(List.of(primary(), cheap()));
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        ConvBnAct p = primary();
        long oh = p.outH(height);
        long ow = p.outW(width);
        Shapes.requireOutput(this, height, width, oh, ow);
        return new long[]{nOut, oh, ow};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        long[] s = ctx.inputShape(0);
        ConvBnAct primary = primary();
        long h = primary.outH(s[2]);
        long w = primary.outW(s[3]);
        SDVariable x1 = primary.apply(ctx, x, p, s[2], s[3]);
        SDVariable x2 = cheap().apply(ctx, x1, p, h, w);
        SDVariable out = ctx.sd().concat(1, x1, x2);
        if (initChannels() + cheapChannels() == nOut) {
            return out;
        }
        return out.get(SDIndex.all(), SDIndex.interval(0L, nOut), SDIndex.all(), SDIndex.all());
    }

    /** Builder; defaults are the reference's (kernel 1, ratio 2, dw 3, stride 1, ReLU, BN momentum 0.1, eps 1e-5). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long nOut;
        private int kernelSize = 1;
        private int ratio = 2;
        private int dwSize = 3;
        private int stride = 1;
        private boolean relu = true;
        private double bnMomentum = 0.1;
        private double bnEps = 1e-5;

        /** Output channels ({@code oup}). */
        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        /** Kernel size of the primary convolution (default 1; padding is {@code kernelSize / 2}). */
        public Builder kernelSize(int kernelSize) {
            this.kernelSize = kernelSize;
            return this;
        }

        /** Output channels per intrinsic channel, at least 2 (default 2). */
        public Builder ratio(int ratio) {
            this.ratio = ratio;
            return this;
        }

        /** Kernel size of the cheap depthwise convolution, odd (default 3). */
        public Builder dwSize(int dwSize) {
            this.dwSize = dwSize;
            return this;
        }

        /** Stride of the primary convolution (default 1). */
        public Builder stride(int stride) {
            this.stride = stride;
            return this;
        }

        /** ReLU after each BatchNorm (default true). */
        public Builder relu(boolean relu) {
            this.relu = relu;
            return this;
        }

        /** BatchNorm momentum, PyTorch convention (default 0.1; DL4J's decay is 1 - momentum). */
        public Builder bnMomentum(double bnMomentum) {
            this.bnMomentum = bnMomentum;
            return this;
        }

        /** BatchNorm epsilon (default 1e-5). */
        public Builder bnEps(double bnEps) {
            this.bnEps = bnEps;
            return this;
        }

        @Override
        public GhostModule build() {
            return validated(new GhostModule(this));
        }
    }
}
