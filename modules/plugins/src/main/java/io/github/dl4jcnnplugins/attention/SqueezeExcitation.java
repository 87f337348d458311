package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.ChannelGate;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.Mean;
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
 * Squeeze-and-Excitation block: rescales each channel by a gate computed from the channel's global mean.
 *
 * <p>Paper: J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018,
 * <a href="https://arxiv.org/abs/1709.01507">arXiv:1709.01507</a>. Mirrors {@code SEBlock} of the reference
 * ({@code shared/reference/torch_plugins.py}) and timm's {@code SEModule} without biases.
 *
 * <pre>
 *   s   = mean_{h,w} x                 [N, C]
 *   g   = sigmoid(W2 relu(W1 s))       W1: [C/r, C] (fc.0.weight), W2: [C, C/r] (fc.2.weight)
 *   out = x * g                        [N, C, H, W]  (same shape as the input)
 * </pre>
 *
 * <p>Parameters (DL4J key = PyTorch name): {@code fc.0.weight} {@code [C/r, C]},
 * {@code fc.2.weight} {@code [C, C/r]}. {@code C / r} is an integer division and must be
 * at least 1.
 *
 * <pre>{@code
 * .addLayer("se", new SqueezeExcitation.Builder().reduction(16).build(), "conv")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class SqueezeExcitation extends PluginLayer {
    public static final String FC1_WEIGHT = ParamSpec.key("fc.0.weight");
    public static final String FC2_WEIGHT = ParamSpec.key("fc.2.weight");

    /** Channel reduction ratio r (hidden units = channels / r). Default 16. */
    private int reduction = 16;

    private SqueezeExcitation(Builder b) {
        super(b);
        this.reduction = b.reduction;
    }

    private long hidden() {
        return nIn / reduction;
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "reduction", reduction);
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
        return "reduction=" + reduction;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return List.of(ParamSpec.weight("fc.0.weight", hidden(), nIn), ParamSpec.weight("fc.2.weight", nIn, hidden()));
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        return new long[]{channels, height, width};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        SDVariable squeezed = Mean.spatial(sd, x);                                                 // [N, C]
        SDVariable z = Relu.apply(sd, Conv.linear(sd, squeezed, p.get(FC1_WEIGHT), nIn, hidden()));
        SDVariable gate = sd.nn().sigmoid(Conv.linear(sd, z, p.get(FC2_WEIGHT), hidden(), nIn));
        return ChannelGate.apply(sd, x, gate, nIn);
    }

    /** Builder; every option has the reference default. */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private int reduction = 16;

        /** Channel reduction ratio (default 16). */
        public Builder reduction(int reduction) {
            this.reduction = reduction;
            return this;
        }

        @Override
        public SqueezeExcitation build() {
            return validated(new SqueezeExcitation(this));
        }
    }
}
