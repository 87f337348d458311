package io.github.dl4jcnnplugins.pyramid;

import io.github.dl4jcnnplugins.base.ExposesIntermediates;
import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginVertex;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.ConvBnAct;
import io.github.dl4jcnnplugins.ops.Mul;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Pooling2DConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * ASFF, adaptively spatial feature fusion: fuses the three levels of a YOLOv3-style feature pyramid into one
 * level with learned per-pixel softmax weights.
 *
 * <p>Paper: S. Liu, D. Huang, Y. Wang, "Learning Spatial Fusion for Single-Shot Object Detection", 2019,
 * <a href="https://arxiv.org/abs/1911.09516">arXiv:1911.09516</a>. Mirrors {@code ASFF} of the reference
 * ({@code shared/reference/torch_plugins.py}), the YOLOv5 port of the official code: every block is
 * {@code Conv} = conv (no bias) + BatchNorm (momentum 0.03, eps 1e-3) + SiLU.
 *
 * <p><b>Inputs, in the reference order: finest level first.</b> {@code input 0} = level 2 (stride 8: fewest
 * channels, largest H and W), {@code input 1} = level 1 (stride 16), {@code input 2} = level 0 (stride 32: most
 * channels, smallest H and W). Spatial sizes must be exactly 2x apart: {@code [N, c2, 4h, 4w]},
 * {@code [N, c1, 2h, 2w]}, {@code [N, c0, h, w]}. Channels are inferred from the input types; with
 * {@code multiplier} set they must equal the reference's {@code int(256 m), int(512 m), int(1024 m)}.
 *
 * <pre>
 *   level 0: r0 = x0;                      r1 = stride_level_1(x1) (3x3 s2);  r2 = stride_level_2(maxpool3s2(x2))
 *   level 1: r0 = up2(compress_level_0(x0)); r1 = x1;                         r2 = stride_level_2(x2) (3x3 s2)
 *   level 2: r0 = up4(compress_level_0(x0)); r1 = up2(compress_level_1(x1));  r2 = x2
 *   w     = softmax_over_levels(weight_levels(cat[weight_level_0(r0), weight_level_1(r1), weight_level_2(r2)]))
 *   fused = r0 w[:,0] + r1 w[:,1] + r2 w[:,2]
 *   out   = expand(fused)                   [N, c_level, H_level, W_level]
 * </pre>
 * ({@code up} is nearest-neighbour upsampling, compress / weight convolutions are 1x1, {@code weight_level_i}
 * has 16 output channels, 8 with {@code rfb}.)
 *
 * <p>With {@code vis}, the fusion weights {@code [N, 3, H, W]} ("weights") and {@code fused.sum(dim=1)}
 * {@code [N, H, W]} ("fused_sum") of the last forward pass are available: {@link #fusionWeights}.
 *
 * <p>Parameters: the reference state_dict names ({@code stride_level_1.conv.weight},
 * {@code weight_levels.bn.running_mean}, ...; DL4J keys write {@code _} as {@code -}).
 *
 * <pre>{@code
 * .addVertex("asff1", new AsffVertex.Builder().level(1).build(), "p3", "p4", "p5")   // finest first
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class AsffVertex extends PluginVertex {
    public static final double BN_MOMENTUM = 0.03;
    public static final double BN_EPS = 1e-3;
    /** Keys of the exposed intermediates (with {@code vis}). */
    public static final String WEIGHTS = "weights";
    public static final String FUSED_SUM = "fused_sum";

    /** Which level to fuse into: 0 (coarsest, stride 32), 1 or 2 (finest, stride 8). */
    private int level;
    /** Reference width multiplier; null (default) means "infer the channels from the inputs". */
    private Double multiplier;
    /** Compress to 8 channels in the weight branch instead of 16 (the ASFF-RFB variant). */
    private boolean rfb;
    /** Keep the fusion weights of the last forward pass. */
    private boolean vis;

    private AsffVertex(Builder b) {
        this.level = b.level;
        this.multiplier = b.multiplier;
        this.rfb = b.rfb;
        this.vis = b.vis;
    }

    @Override
    public int numInputs() {
        return 3;
    }

    /** Channels of levels 0, 1, 2 (coarsest first, the reference's {@code dim}). */
    private long[] dim() {
        return new long[]{inputChannels[2], inputChannels[1], inputChannels[0]};
    }

    private long inter() {
        return dim()[level];
    }

    private long compress() {
        return rfb ? 8 : 16;
    }

    private ConvBnAct block(String name, long in, long out, int k, int s) {
        return ConvBnAct.named(name, in, out, Conv.Spec.of(k, s, k / 2), BN_MOMENTUM, BN_EPS, Activation.SWISH);
    }

    /** The blocks, in the reference module's order. */
    private List<ConvBnAct> blocks() {
        long[] d = dim();
        long inter = inter();
        List<ConvBnAct> b = new ArrayList<>();
        switch (level) {
            case 0 -> {
                b.add(block("stride_level_1", d[1], inter, 3, 2));
                b.add(block("stride_level_2", d[2], inter, 3, 2));
                b.add(block("expand", inter, d[0], 3, 1));
            }
            case 1 -> {
                b.add(block("compress_level_0", d[0], inter, 1, 1));
                b.add(block("stride_level_2", d[2], inter, 3, 2));
                b.add(block("expand", inter, d[1], 3, 1));
            }
            default -> {
                b.add(block("compress_level_0", d[0], inter, 1, 1));
                b.add(block("compress_level_1", d[1], inter, 1, 1));
                b.add(block("expand", inter, d[2], 3, 1));
            }
        }
        for (int i = 0; i < 3; i++) {
            b.add(block("weight_level_" + i, inter, compress(), 1, 1));
        }
        b.add(block("weight_levels", compress() * 3, 3, 1, 1));
        return b;
    }

    private ConvBnAct block(String name) {
        for (ConvBnAct b : blocks()) {
            if (b.convName().equals(name + ".conv")) {
                return b;
            }
        }
        throw new IllegalStateException(name);
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return ConvBnAct.params(blocks());
    }

    @Override
    public void validate() {
        if (level < 0 || level > 2) {
            throw error("invalid value for `level`: expected 0, 1 or 2; got level=" + level);
        }
        if (multiplier != null && !(multiplier > 0)) {
            throw error("invalid value for `multiplier`: expected a positive value (or none, to infer channels); got multiplier="
                    + multiplier);
        }
    }

    @Override
    public String describe() {
        return "level=" + level + (multiplier != null ? ", multiplier=" + multiplier : "") + (rfb ? ", rfb" : "")
                + (vis ? ", vis" : "");
    }

    private static String shapes(long[][] chw) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < chw.length; i++) {
            s.append(i == 0 ? "" : ", ").append("[N,").append(chw[i][0]).append(',').append(chw[i][1]).append(',')
                    .append(chw[i][2]).append(']');
        }
        return s.toString();
    }

    private void checkLevels(long[][] chw) {
        String order = "inputs must be the three pyramid levels finest first: input 0 = level 2 [N, c2, 4h, 4w], "
                + "input 1 = level 1 [N, c1, 2h, 2w], input 2 = level 0 [N, c0, h, w]; got " + shapes(chw);
        if (chw[0][1] < chw[2][1] || chw[0][2] < chw[2][2]) {
            throw error("wrong input order: " + order);
        }
        if (chw[0][1] != 2 * chw[1][1] || chw[1][1] != 2 * chw[2][1] || chw[0][2] != 2 * chw[1][2]
                || chw[1][2] != 2 * chw[2][2]) {
            throw error("pyramid sizes are not exactly 2x apart: " + order);
        }
        if (multiplier != null) {
            long[] expected = {(long) (256 * multiplier), (long) (512 * multiplier), (long) (1024 * multiplier)};
            for (int i = 0; i < 3; i++) {
                if (chw[i][0] != expected[i]) {
                    throw error("with multiplier " + multiplier + " the inputs need " + Arrays.toString(expected)
                            + " channels (finest first); got " + shapes(chw));
                }
            }
        }
    }

    @Override
    protected void configure(InputType.InputTypeConvolutional[] inputs) {
        long[][] chw = new long[3][];
        for (int i = 0; i < 3; i++) {
            chw[i] = new long[]{inputs[i].getChannels(), inputs[i].getHeight(), inputs[i].getWidth()};
        }
        checkLevels(chw);
    }

    @Override
    public long[] outputShape(long[][] inputs) {
        checkLevels(inputs);
        long[] target = inputs[2 - level];
        return new long[]{target[0], target[1], target[2]};
    }

    @Override
    public SDVariable define(PluginContext ctx, List<SDVariable> in, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s2 = ctx.inputShape(0), s1 = ctx.inputShape(1), s0 = ctx.inputShape(2);
        SDVariable x2 = in.get(0), x1 = in.get(1), x0 = in.get(2);
        SDVariable r0, r1, r2;
        long h, w;   // size of the target level
        switch (level) {
            case 0 -> {
                h = s0[2];
                w = s0[3];
                r0 = x0;
                r1 = block("stride_level_1").apply(ctx, x1, p, s1[2], s1[3]);
                SDVariable pooled = sd.cnn().maxPooling2d(x2, Pooling2DConfig.builder().kH(3).kW(3).sH(2).sW(2)
                        .pH(1).pW(1).paddingMode(PaddingMode.VALID).isNHWC(false).build());
                r2 = block("stride_level_2").apply(ctx, pooled, p, s1[2], s1[3]);
            }
            case 1 -> {
                h = s1[2];
                w = s1[3];
                r0 = upsample(sd, block("compress_level_0").apply(ctx, x0, p, s0[2], s0[3]), 2);
                r1 = x1;
                r2 = block("stride_level_2").apply(ctx, x2, p, s2[2], s2[3]);
            }
            default -> {
                h = s2[2];
                w = s2[3];
                r0 = upsample(sd, block("compress_level_0").apply(ctx, x0, p, s0[2], s0[3]), 4);
                r1 = upsample(sd, block("compress_level_1").apply(ctx, x1, p, s1[2], s1[3]), 2);
                r2 = x2;
            }
        }
        SDVariable v = sd.concat(1, block("weight_level_0").apply(ctx, r0, p, h, w),
                block("weight_level_1").apply(ctx, r1, p, h, w), block("weight_level_2").apply(ctx, r2, p, h, w));
        SDVariable weights = sd.nn().softmax(block("weight_levels").apply(ctx, v, p, h, w), 1);   // [N, 3, H, W]
        SDVariable fused = Mul.of(sd, r0, channel(weights, 0), 1).add(Mul.of(sd, r1, channel(weights, 1), 1))
                .add(Mul.of(sd, r2, channel(weights, 2), 1));
        if (vis) {
            ctx.expose(WEIGHTS, weights);
            ctx.expose(FUSED_SUM, fused.sum(1));
        }
        return block("expand").apply(ctx, fused, p, h, w);
    }

    private static SDVariable channel(SDVariable x, long c) {
        return x.get(SDIndex.all(), SDIndex.interval(c, c + 1), SDIndex.all(), SDIndex.all());
    }

    private static SDVariable upsample(SameDiff sd, SDVariable x, int factor) {
        return sd.cnn().upsampling2d(x, factor, factor, true);
    }

    /**
     * The per-pixel fusion weights {@code [N, 3, H, W]} of the last forward pass of ASFF vertex {@code name}
     * (built with {@code vis(true)}); channel i weighs level i (0 = coarsest).
     */
    public static INDArray fusionWeights(ComputationGraph net, String name) {
        Object v = net.getVertex(name);
        if (!(v instanceof ExposesIntermediates e) || !e.exposed().containsKey(WEIGHTS)) {
            throw new IllegalArgumentException("vertex '" + name + "' is not an AsffVertex built with vis(true), or has not run yet");
        }
        return e.exposed().get(WEIGHTS);
    }

    /** Builder; defaults are the reference's (no rfb, no vis); the level must be given. */
    public static class Builder {
        private int level = -1;
        private Double multiplier;
        private boolean rfb;
        private boolean vis;

        /** The level to fuse into: 0 (coarsest, stride 32), 1, or 2 (finest, stride 8). */
        public Builder level(int level) {
            this.level = level;
            return this;
        }

        /** The reference's width multiplier: the inputs must then have int(256m), int(512m), int(1024m) channels. */
        public Builder multiplier(double multiplier) {
            this.multiplier = multiplier;
            return this;
        }

        public Builder rfb(boolean rfb) {
            this.rfb = rfb;
            return this;
        }

        /** Keep the fusion weights for visualisation ({@link AsffVertex#fusionWeights}). */
        public Builder vis(boolean vis) {
            this.vis = vis;
            return this;
        }

        public AsffVertex build() {
            AsffVertex v = new AsffVertex(this);
            v.validate();
            return v;
        }
    }
}
