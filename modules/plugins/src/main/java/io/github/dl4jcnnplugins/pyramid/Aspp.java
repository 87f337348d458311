package io.github.dl4jcnnplugins.pyramid;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.Mean;
import io.github.dl4jcnnplugins.ops.Mul;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Atrous Spatial Pyramid Pooling: parallel atrous (dilated) convolutions at several rates plus an image-level
 * branch, concatenated and fused by a 1x1 convolution.
 *
 * <p>Paper: L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous Convolution for Semantic Image
 * Segmentation", 2017, <a href="https://arxiv.org/abs/1706.05587">arXiv:1706.05587</a>. Mirrors {@code ASPP} of
 * the reference ({@code shared/reference/torch_plugins.py}): the classic plug-in variant, every convolution with a
 * bias and no BatchNorm.
 *
 * <pre>
 *   img  = conv_1x1(mean_{h,w} x)  broadcast to H x W    [N, D, H, W]  (bilinear upsampling from 1x1 is a broadcast)
 *   b1   = conv_1x1(x)                                   [N, D, H, W]
 *   b_r  = conv_3x3(x, dilation r, padding r)            [N, D, H, W]  for each rate r, in the given order
 *   out  = conv_1x1(cat([img, b1, b_r1, b_r2, ...]))      [N, D, H, W]
 * </pre>
 * Input {@code [N, C, H, W]}, output {@code [N, D, H, W]} with {@code D = nOut} (the reference's {@code depth}).
 * Any list of distinct rates {@code >= 2} is allowed, including none.
 *
 * <p>Parameters (DL4J key = PyTorch name with {@code '_'} written {@code '-'}, see {@link ParamSpec#key(String)}):
 * {@code conv.weight} {@code [D, C, 1, 1]} and {@code conv.bias} {@code [D]} (image branch);
 * {@code atrous_block1.weight} {@code [D, C, 1, 1]}, {@code atrous_block1.bias};
 * {@code atrous_block<r>.weight} {@code [D, C, 3, 3]}, {@code atrous_block<r>.bias} per rate;
 * {@code conv_1x1_output.weight} {@code [D, D * (2 + #rates), 1, 1]}, {@code conv_1x1_output.bias} {@code [D]}.
 *
 * <pre>{@code
 * .addLayer("aspp", new Aspp.Builder().nOut(256).rates(6, 12, 18).build(), "backbone")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class Aspp extends PluginLayer {
    public static final String IMAGE_WEIGHT = ParamSpec.key("conv.weight");
    public static final String IMAGE_BIAS = ParamSpec.key("conv.bias");
    public static final String OUTPUT_WEIGHT = ParamSpec.key("conv_1x1_output.weight");
    public static final String OUTPUT_BIAS = ParamSpec.key("conv_1x1_output.bias");

    /** Output channels of every branch and of the block (the reference's {@code depth}). Default 256. */
    private long nOut = 256;
    /** Atrous rates of the 3x3 branches, distinct and {@code >= 2}. Default {6, 12, 18}. */
    private int[] rates = {6, 12, 18};

    private Aspp(Builder b) {
        super(b);
        this.nOut = b.nOut;
        this.rates = b.rates == null ? null : b.rates.clone();
    }

    /** PyTorch name of the weight of the branch with dilation {@code rate} (1 = the plain 1x1 branch). */
    public static String branchWeight(int rate) {
        return "atrous_block" + rate + ".weight";
    }

    /** PyTorch name of the bias of the branch with dilation {@code rate} (1 = the plain 1x1 branch). */
    public static String branchBias(int rate) {
        return "atrous_block" + rate + ".bias";
    }

    /** Number of concatenated branches: image pooling, 1x1, one per rate. */
    private long branches() {
        return 2L + rates.length;
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "nOut", nOut);
        if (rates == null) {
            throw error("invalid value for `rates`: expected a list of distinct integers >= 2 (it may be empty); got null");
        }
        for (int i = 0; i < rates.length; i++) {
            boolean repeated = false;
            for (int j = 0; j < i; j++) {
                repeated |= rates[j] == rates[i];
            }
            if (rates[i] < 2 || repeated) {
                throw error("invalid value for `rates`: expected distinct integers >= 2 (rate 1 is the 1x1 branch); got rates="
                        + Arrays.toString(rates));
            }
        }
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", rates=" + Arrays.toString(rates);
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        List<ParamSpec> specs = new ArrayList<>();
        specs.add(ParamSpec.weight("conv.weight", nOut, nIn, 1, 1));
        specs.add(ParamSpec.bias("conv.bias", nIn, nOut));
        specs.add(ParamSpec.weight(branchWeight(1), nOut, nIn, 1, 1));
        specs.add(ParamSpec.bias(branchBias(1), nIn, nOut));
        for (int r : rates) {
            specs.add(ParamSpec.weight(branchWeight(r), nOut, nIn, 3, 3));
            specs.add(ParamSpec.bias(branchBias(r), nIn * 9, nOut));
        }
        long cat = nOut * branches();
        specs.add(ParamSpec.weight("conv_1x1_output.weight", nOut, cat, 1, 1));
        specs.add(ParamSpec.bias("conv_1x1_output.bias", cat, nOut));
        return specs;
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        return new long[]{nOut, height, width};   // 3x3 with padding = dilation keeps the size
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        Conv.Spec pointwise = Conv.Spec.of(1, 1, 0);

        SDVariable pooled = Conv.conv2d(sd, Mean.along(sd, x, 2, 3), p.get(IMAGE_WEIGHT),
                p.get(IMAGE_BIAS), nIn, nOut, pointwise);                                          // [N, D, 1, 1]
        SDVariable[] cat = new SDVariable[(int) branches()];
        cat[0] = Mul.spread(sd, pooled, s[2], s[3]);                                               // broadcast to H x W
        cat[1] = branch(sd, x, p, 1, pointwise, s[2], s[3]);
        for (int i = 0; i < rates.length; i++) {
            cat[i + 2] = branch(sd, x, p, rates[i], Conv.Spec.of(3, 1, rates[i], rates[i], 1), s[2], s[3]);
        }
        return Conv.conv2d(sd, sd.concat(1, cat), p.get(OUTPUT_WEIGHT), p.get(OUTPUT_BIAS), nOut * branches(), nOut,
                pointwise, s[2], s[3]);
    }

    private SDVariable branch(SameDiff sd, SDVariable x, Map<String, SDVariable> p, int rate, Conv.Spec spec, long h,
                              long w) {
        return Conv.conv2d(sd, x, p.get(ParamSpec.key(branchWeight(rate))), p.get(ParamSpec.key(branchBias(rate))),
                nIn, nOut, spec, h, w);
    }

    /** Builder; defaults are the reference's (depth 256, rates 6, 12, 18). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long nOut = 256;
        private int[] rates = {6, 12, 18};

        /** Output channels of every branch and of the block (default 256). */
        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        /** The reference's name for {@link #nOut(long)}. */
        public Builder depth(long depth) {
            return nOut(depth);
        }

        /** Atrous rates of the 3x3 branches: distinct, each {@code >= 2}; may be empty (default 6, 12, 18). */
        public Builder rates(int... rates) {
            this.rates = rates == null ? null : rates.clone();
            return this;
        }

        @Override
        public Aspp build() {
            return validated(new Aspp(this));
        }
    }
}
