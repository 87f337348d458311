package io.github.dl4jcnnplugins.attention;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.MatMul;
import io.github.dl4jcnnplugins.ops.MaxPool2x2;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Non-local block (2-D): every position attends to every (optionally sub-sampled) position, and the attended
 * features are added back to the input through a 1x1 convolution.
 *
 * <p>Paper: X. Wang, R. Girshick, A. Gupta, K. He, "Non-local Neural Networks", CVPR 2018,
 * <a href="https://arxiv.org/abs/1711.07971">arXiv:1711.07971</a>. Mirrors {@code NonLocal} of the reference
 * ({@code shared/reference/torch_plugins.py}), including its initialisation: {@code conv_mask} gets PyTorch's
 * default init, so (unlike timm's zero-initialised variant) a fresh block is not the identity.
 *
 * <p>With {@code P = H*W} query positions, {@code M} key positions ({@code M = P}, or
 * {@code floor(H/2) * floor(W/2)} with {@code subSample}: a 2x2 max pool applied after phi and g) and
 * {@code I = interChannels} (default {@code C / 2}):
 * <pre>
 *   q   = theta(x)                [N, I, P]     (gaussian: x itself, C channels)
 *   k   = pool(phi(x))            [N, I, M]     (gaussian: pool(x))
 *   v   = pool(g(x))              [N, I, M]
 *   f   = q^T k                   [N, P, M]
 *   A   = softmax(f) over M       (embedded_gaussian, gaussian)
 *       = f / M                   (dot_product)
 *   y   = (A v^T)^T               [N, I, H, W]
 *   out = x + mask(y)             [N, C, H, W]  (same shape as the input)
 * </pre>
 * theta, phi, g and mask are 1x1 convolutions without bias.
 *
 * <p>Parameters (DL4J key = PyTorch name with {@code '_'} written {@code '-'}, see {@link ParamSpec#key(String)}):
 * {@code conv_theta.weight} and {@code conv_phi.weight} {@code [I, C, 1, 1]} (not in gaussian mode),
 * {@code conv_g.weight} {@code [I, C, 1, 1]}, {@code conv_mask.weight} {@code [C, I, 1, 1]}.
 *
 * <pre>{@code
 * .addLayer("nl", new NonLocal.Builder().mode(NonLocal.Mode.EMBEDDED_GAUSSIAN).subSample(true).build(), "res4")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class NonLocal extends PluginLayer {
    public static final String THETA_WEIGHT = ParamSpec.key("conv_theta.weight");
    public static final String PHI_WEIGHT = ParamSpec.key("conv_phi.weight");
    public static final String G_WEIGHT = ParamSpec.key("conv_g.weight");
    public static final String MASK_WEIGHT = ParamSpec.key("conv_mask.weight");

    /** The pairwise functions of the paper, named as the reference names them. */
    public enum Mode {
        /** {@code softmax(theta(x)^T phi(x))}: the paper's default. */
        EMBEDDED_GAUSSIAN,
        /** {@code theta(x)^T phi(x) / M}. */
        DOT_PRODUCT,
        /** {@code softmax(x^T x)}: no theta / phi embeddings. */
        GAUSSIAN;

        /** The reference's name, e.g. {@code embedded_gaussian}. */
        public String torchName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** All reference names, comma separated. */
        public static String names() {
            return Arrays.stream(values()).map(Mode::torchName).collect(Collectors.joining(", "));
        }

        /** Parses a reference name ({@code embedded_gaussian}, {@code dot_product}, {@code gaussian}). */
        public static Mode parse(String name) {
            for (Mode m : values()) {
                if (m.torchName().equals(name)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("expected one of " + names() + "; got mode='" + name + "'");
        }
    }

    /** Pairwise function. Default {@link Mode#EMBEDDED_GAUSSIAN}. */
    private Mode mode = Mode.EMBEDDED_GAUSSIAN;
    /** Channels of the embeddings; null (the default) means {@code channels / 2}. */
    private Long interChannels;
    /** Whether keys and values are 2x2 max-pooled (4x fewer keys). Default false. */
    private boolean subSample;

    private NonLocal(Builder b) {
        super(b);
        this.mode = b.mode;
        this.interChannels = b.interChannels;
        this.subSample = b.subSample;
    }

    /** The embedding width for the current number of input channels. */
    private long inter() {
        return interChannels != null ? interChannels : nIn / 2;
    }

    private boolean embedded() {
        return mode != Mode.GAUSSIAN;
    }

    @Override
    public void validate() {
        if (mode == null) {
            throw error("invalid value for `mode`: expected one of " + Mode.names() + "; got null");
        }
        if (interChannels != null) {
            Shapes.requirePositive(this, "interChannels", interChannels);
        }
    }

    @Override
    protected void validateChannels(long channels) {
        if (interChannels == null && channels / 2 < 1) {
            throw error("the default interChannels = channels / 2 is 0 for " + channels
                    + " channel; set interChannels explicitly");
        }
    }

    @Override
    public String describe() {
        return "mode=" + (mode == null ? "null" : mode.torchName()) + ", interChannels=" + (interChannels == null ? "channels/2" : interChannels)
                + ", subSample=" + subSample;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        long i = inter();
        List<ParamSpec> specs = new ArrayList<>();
        if (embedded()) {
            specs.add(ParamSpec.weight("conv_theta.weight", i, nIn, 1, 1));
            specs.add(ParamSpec.weight("conv_phi.weight", i, nIn, 1, 1));
        }
        specs.add(ParamSpec.weight("conv_g.weight", i, nIn, 1, 1));
        specs.add(ParamSpec.weight("conv_mask.weight", nIn, i, 1, 1));
        return specs;
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        if (subSample && (height < 2 || width < 2)) {
            throw error("sub-sampling on a 1-pixel-" + (height < 2 ? "high" : "wide")
                    + " input: the 2x2 max pool needs height and width >= 2; got " + height + "x" + width);
        }
        return new long[]{channels, height, width};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        long h = s[2], w = s[3], positions = h * w;
        long keys = subSample ? (h / 2) * (w / 2) : positions;
        long i = inter();
        long qk = embedded() ? i : nIn;    // channels of queries and keys

        SDVariable query = embedded() ? pointwise(sd, x, p.get(THETA_WEIGHT), nIn, i, h, w) : x;
        SDVariable key = embedded() ? pointwise(sd, x, p.get(PHI_WEIGHT), nIn, i, h, w) : x;
        SDVariable value = pointwise(sd, x, p.get(G_WEIGHT), nIn, i, h, w);
        if (subSample) {
            key = MaxPool2x2.apply(sd, key);
            value = MaxPool2x2.apply(sd, value);
        }
        SDVariable q = query.reshape(-1, qk, positions);                        // [N, qk, P]
        SDVariable k = key.reshape(-1, qk, keys);                               // [N, qk, M]
        SDVariable v = value.reshape(-1, i, keys);                              // [N, I, M]

        SDVariable f = MatMul.batch(sd, q, k, true, false);                    // [N, P, M]
        SDVariable attention = mode == Mode.DOT_PRODUCT ? f.div(keys) : sd.nn().softmax(f, 2);
        SDVariable y = MatMul.batch(sd, v, attention, false, true);            // [N, I, P] = (A v^T)^T
        return x.add(pointwise(sd, y.reshape(-1, i, h, w), p.get(MASK_WEIGHT), i, nIn, h, w));
    }

    private static SDVariable pointwise(SameDiff sd, SDVariable x, SDVariable weight, long in, long out, long h, long w) {
        return Conv.conv2d(sd, x, weight, null, in, out, Conv.Spec.of(1, 1, 0), h, w);
    }

    /** Builder; defaults are the reference's (embedded_gaussian, channels / 2, no sub-sampling). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private Mode mode = Mode.EMBEDDED_GAUSSIAN;
        private Long interChannels;
        private boolean subSample;

        public Builder mode(Mode mode) {
            this.mode = mode;
            return this;
        }

        /** The reference's names: {@code embedded_gaussian}, {@code dot_product}, {@code gaussian}. */
        public Builder mode(String mode) {
            try {
                this.mode = Mode.parse(mode);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("NonLocal: invalid value for `mode`: " + e.getMessage(), e);
            }
            return this;
        }

        /** Channels of the theta / phi / g embeddings (default: input channels / 2). */
        public Builder interChannels(long interChannels) {
            this.interChannels = interChannels;
            return this;
        }

        /** 2x2 max-pool the keys and values (default false). */
        public Builder subSample(boolean subSample) {
            this.subSample = subSample;
            return this;
        }

        @Override
        public NonLocal build() {
            return validated(new NonLocal(this));
        }
    }
}
