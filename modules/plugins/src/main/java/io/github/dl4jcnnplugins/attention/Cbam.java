package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.ChannelGate;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.MeanMax;
import io.github.dl4jcnnplugins.ops.Mul;
import io.github.dl4jcnnplugins.ops.Relu;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.List;
import java.util.Map;

/**
 * Convolutional Block Attention Module: channel attention, then spatial attention on the refined features.
 *
 * <p>Paper: S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
 * <a href="https://arxiv.org/abs/1807.06521">arXiv:1807.06521</a>. Mirrors {@code CBAM} of the reference
 * ({@code shared/reference/torch_plugins.py}).
 *
 * <pre>
 *   Mc  = sigmoid(W2 relu(W1 avgpool(x)) + W2 relu(W1 maxpool(x)))   [N, C, 1, 1]
 *   x'  = x * Mc
 *   Ms  = sigmoid(conv_k([mean_c(x'); max_c(x')]))                   [N, 1, H, W], padding k/2, no bias
 *   out = x' * Ms                                                    [N, C, H, W]
 * </pre>
 *
 * <p>Parameters (DL4J key = PyTorch name): {@code ca.fc1.weight} {@code [C/r, C, 1, 1]},
 * {@code ca.fc2.weight} {@code [C, C/r, 1, 1]}, {@code sa.conv1.weight} {@code [1, 2, k, k]}.
 *
 * <pre>{@code
 * .addLayer("cbam", new Cbam.Builder().reduction(16).spatialKernel(7).build(), "conv")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class Cbam extends PluginLayer {
    public static final String CA_FC1_WEIGHT = ParamSpec.key("ca.fc1.weight");
    public static final String CA_FC2_WEIGHT = ParamSpec.key("ca.fc2.weight");
    public static final String SA_CONV_WEIGHT = ParamSpec.key("sa.conv1.weight");

    /** Channel reduction ratio of the shared MLP. Default 16. */
    private int reduction = 16;
    /** Kernel size of the spatial-attention convolution (odd). Default 7. */
    private int spatialKernel = 7;

    private Cbam(Builder b) {
        super(b);
        this.reduction = b.reduction;
        this.spatialKernel = b.spatialKernel;
    }

    private long hidden() {
        return nIn / reduction;
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "reduction", reduction);
        Shapes.requirePositive(this, "spatialKernel", spatialKernel);
        if (spatialKernel % 2 != 1) {
            throw error("invalid value for `spatialKernel`: expected an odd size (so that H and W are kept); got spatialKernel="
                    + spatialKernel);
        }
    }

    @Override
    protected void validateChannels(long channels) {
        if (channels / reduction < 1) {
            throw error("reduction must not exceed the number of channels: " + channels + " channels / reduction "
                    + reduction + " leaves no hidden unit");
        }
    }

    @Override
    public String describe() {
        return "reduction=" + reduction + ", spatialKernel=" + spatialKernel;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return List.of(ParamSpec.weight("ca.fc1.weight", hidden(), nIn, 1, 1),
                ParamSpec.weight("ca.fc2.weight", nIn, hidden(), 1, 1),
                ParamSpec.weight("sa.conv1.weight", 1, 2, spatialKernel, spatialKernel));
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        return new long[]{channels, height, width};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        SDVariable[] overPixels = MeanMax.spatial(sd, x);                                             // [N, C] x 2
        SDVariable avg = sharedMlp(sd, overPixels[0], p);
        SDVariable max = sharedMlp(sd, overPixels[1], p);
        SDVariable refined = ChannelGate.apply(sd, x, sd.nn().sigmoid(avg.add(max)), nIn);

        SDVariable[] overChannels = MeanMax.along(sd, refined, 1);                                     // [N, 1, H, W] x 2
        SDVariable pooled = sd.concat(1, overChannels[0], overChannels[1]);                             // [N, 2, H, W]
        SDVariable logits = Conv.conv2d(sd, pooled, p.get(SA_CONV_WEIGHT), null, 2, 1,
                Conv.Spec.of(spatialKernel, 1, spatialKernel / 2));
        return Mul.of(sd, refined, sd.nn().sigmoid(logits), 1);
    }

    private SDVariable sharedMlp(SameDiff sd, SDVariable v, Map<String, SDVariable> p) {
        SDVariable h = Relu.apply(sd, Conv.linear(sd, v, p.get(CA_FC1_WEIGHT), nIn, hidden()));
        return Conv.linear(sd, h, p.get(CA_FC2_WEIGHT), hidden(), nIn);
    }

    /** Builder; every option has the reference default. */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private int reduction = 16;
        private int spatialKernel = 7;

        /** Channel reduction ratio (default 16). */
        public Builder reduction(int reduction) {
            this.reduction = reduction;
            return this;
        }

        /** Spatial-attention kernel size, odd (default 7). */
        public Builder spatialKernel(int spatialKernel) {
            this.spatialKernel = spatialKernel;
            return this;
        }

        @Override
        public Cbam build() {
            return validated(new Cbam(this));
        }
    }
}
