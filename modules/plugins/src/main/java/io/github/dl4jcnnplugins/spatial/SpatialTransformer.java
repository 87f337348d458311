package io.github.dl4jcnnplugins.spatial;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.BilinearSampler;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.MaxPool2x2;
import io.github.dl4jcnnplugins.ops.Relu;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.List;
import java.util.Map;

/**
 * Spatial Transformer (affine): a small localisation network predicts an affine transform per sample, and the
 * input is resampled bilinearly on the transformed grid.
 *
 * <p>Paper: M. Jaderberg, K. Simonyan, A. Zisserman, K. Kavukcuoglu, "Spatial Transformer Networks", NeurIPS 2015,
 * <a href="https://arxiv.org/abs/1506.02025">arXiv:1506.02025</a>. Mirrors {@code SpatialTransformer} of the
 * reference ({@code shared/reference/torch_plugins.py}), i.e. the PyTorch STN tutorial.
 *
 * <pre>
 *   h1 = (H - 6) / 2,  h' = (h1 - 4) / 2   (integer division; same for w')      needs h', w' >= 1 (H, W >= 18)
 *   feat  = relu(maxpool2(conv5(relu(maxpool2(conv7(x))))))     [N, 10, h', w']
 *   theta = fc2(relu(fc1(flatten(feat))))                         [N, 2, 3]  (flatten in C order, as PyTorch)
 *   grid  = affine_grid(theta, [N, C, outH, outW], alignCorners)
 *   out   = grid_sample(x, grid, bilinear, zeros outside, alignCorners)   [N, C, outH, outW]
 * </pre>
 * {@code fc2} starts at weight 0 and bias {@code [1, 0, 0, 0, 1, 0]}: a fresh layer is the identity transform
 * (with {@code outH, outW = H, W} it returns its input). The grid formulas are in {@link BilinearSampler#affineGrid}
 * and {@link BilinearSampler#gridSample}; use those two (or {@link BilinearSampler#affineSample}, both in one call,
 * which this layer uses) directly to drive the sampler with your own localisation network (any SameDiff expression
 * giving {@code theta [N, 2, 3]}).
 *
 * <p>Input {@code [N, C, height, width]}: the input size is fixed by the localisation net's dense layer
 * ({@code height}/{@code width} come from the network's input type, like {@code nIn}; set them on the builder only
 * when the layer is used without one). Output
 * {@code [N, C, outHeight, outWidth]}, by default the input size.
 *
 * <p>Parameters (DL4J key = PyTorch name with {@code '_'} written {@code '-'}, see {@link ParamSpec#key}):
 * {@code localization.0.weight [8, C, 7, 7]}, {@code localization.0.bias [8]},
 * {@code localization.3.weight [10, 8, 5, 5]}, {@code localization.3.bias [10]},
 * {@code fc_loc.0.weight [32, 10*h'*w']}, {@code fc_loc.0.bias [32]}, {@code fc_loc.2.weight [6, 32]},
 * {@code fc_loc.2.bias [6]}.
 *
 * <pre>{@code
 * .addLayer("stn", new SpatialTransformer.Builder().outSize(24, 24).alignCorners(false).build(), "in")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class SpatialTransformer extends PluginLayer {
    public static final String LOC1_WEIGHT = ParamSpec.key("localization.0.weight");
    public static final String LOC1_BIAS = ParamSpec.key("localization.0.bias");
    public static final String LOC2_WEIGHT = ParamSpec.key("localization.3.weight");
    public static final String LOC2_BIAS = ParamSpec.key("localization.3.bias");
    public static final String FC1_WEIGHT = ParamSpec.key("fc_loc.0.weight");
    public static final String FC1_BIAS = ParamSpec.key("fc_loc.0.bias");
    public static final String FC2_WEIGHT = ParamSpec.key("fc_loc.2.weight");
    public static final String FC2_BIAS = ParamSpec.key("fc_loc.2.bias");

    /** Identity affine transform, row-major {@code [2, 3]}: the initial value of {@code fc_loc.2.bias}. */
    static final double[] IDENTITY = {1, 0, 0, 0, 1, 0};
    private static final int LOC1_CHANNELS = 8;
    private static final int LOC2_CHANNELS = 10;
    private static final int HIDDEN = 32;

    /** Input height (set from the input type; 0 = not known yet). */
    private long height;
    /** Input width (set from the input type; 0 = not known yet). */
    private long width;
    /** Output height; 0 = the input height. */
    private long outHeight;
    /** Output width; 0 = the input width. */
    private long outWidth;
    /** Grid convention of {@code affine_grid} / {@code grid_sample} (PyTorch's default: false). */
    private boolean alignCorners;

    private SpatialTransformer(Builder b) {
        super(b);
        this.height = b.height;
        this.width = b.width;
        this.outHeight = b.outHeight;
        this.outWidth = b.outWidth;
        this.alignCorners = b.alignCorners;
    }

    /** Size after the localisation net along one axis: {@code ((size - 6) / 2 - 4) / 2} (floor). */
    static long localisedSize(long size) {
        return Math.floorDiv(pooledOnceSize(size) - 4, 2);
    }

    /** Size along one axis after the first conv7 and pool2 (the second conv's input). */
    private static long pooledOnceSize(long size) {
        return Math.floorDiv(size - 6, 2);
    }

    private long resolvedOutHeight(long inHeight) {
        return outHeight > 0 ? outHeight : inHeight;
    }

    private long resolvedOutWidth(long inWidth) {
        return outWidth > 0 ? outWidth : inWidth;
    }

    @Override
    public void validate() {
        Shapes.requireNonNegative(this, "height", height);
        Shapes.requireNonNegative(this, "width", width);
        Shapes.requireNonNegative(this, "outHeight", outHeight);
        Shapes.requireNonNegative(this, "outWidth", outWidth);
        if (height > 0 || width > 0) {
            requireLocalisable(height, width);
        }
    }

    private void requireLocalisable(long h, long w) {
        if (localisedSize(h) < 1 || localisedSize(w) < 1) {
            throw error("input " + h + "x" + w + " is too small for the localisation net (conv7, pool2, conv5, pool2): "
                    + "height and width must be at least 18");
        }
    }

    @Override
    public String describe() {
        return "height=" + height + ", width=" + width + ", outSize=" + (outHeight > 0 ? outHeight : "input") + "x"
                + (outWidth > 0 ? outWidth : "input") + ", alignCorners=" + alignCorners;
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        InputType.InputTypeConvolutional c = convolutional(inputType);
        if (height <= 0 || width <= 0 || override) {
            height = c.getHeight();
            width = c.getWidth();
        }
        super.setNIn(inputType, override);
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        if (height <= 0 || width <= 0) {
            throw error("the input size is not known: give the network an input type or set height and width on the builder");
        }
        long flat = LOC2_CHANNELS * localisedSize(height) * localisedSize(width);
        return List.of(
                ParamSpec.weight("localization.0.weight", LOC1_CHANNELS, nIn, 7, 7),
                ParamSpec.bias("localization.0.bias", nIn * 49, LOC1_CHANNELS),
                ParamSpec.weight("localization.3.weight", LOC2_CHANNELS, LOC1_CHANNELS, 5, 5),
                ParamSpec.bias("localization.3.bias", LOC1_CHANNELS * 25, LOC2_CHANNELS),
                ParamSpec.weight("fc_loc.0.weight", HIDDEN, flat),
                ParamSpec.bias("fc_loc.0.bias", flat, HIDDEN),
                ParamSpec.of("fc_loc.2.weight", ParamSpec.Kind.WEIGHT, ParamSpec.Init.ZERO, null, 6, HIDDEN),
                ParamSpec.of("fc_loc.2.bias", ParamSpec.Kind.BIAS, ParamSpec.Init.VALUES, IDENTITY, 6));
    }

    @Override
    public long[] outputShape(long channels, long h, long w) {
        requireLocalisable(h, w);
        if (height > 0 && width > 0 && (h != height || w != width)) {
            throw error("expected spatial size " + height + "x" + width + " (the localisation net's dense layer is "
                    + "sized for it); got " + h + "x" + w);
        }
        return new long[]{channels, resolvedOutHeight(h), resolvedOutWidth(w)};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        SDVariable theta = theta(sd, x, p);
        long oh = resolvedOutHeight(s[2]);
        long ow = resolvedOutWidth(s[3]);
        return BilinearSampler.affineSample(sd, x, nIn, s[2], s[3], theta, oh, ow, alignCorners);
    }

    /** The localisation net: {@code theta [N, 2, 3]} for {@code x}. */
    private SDVariable theta(SameDiff sd, SDVariable x, Map<String, SDVariable> p) {
        SDVariable f = Conv.conv2d(sd, x, p.get(LOC1_WEIGHT), p.get(LOC1_BIAS), nIn, LOC1_CHANNELS, Conv.Spec.of(7, 1, 0),
                height, width);
        f = Relu.apply(sd, MaxPool2x2.apply(sd, f));
        f = Conv.conv2d(sd, f, p.get(LOC2_WEIGHT), p.get(LOC2_BIAS), LOC1_CHANNELS, LOC2_CHANNELS, Conv.Spec.of(5, 1, 0),
                pooledOnceSize(height), pooledOnceSize(width));
        f = Relu.apply(sd, MaxPool2x2.apply(sd, f));
        long flat = LOC2_CHANNELS * localisedSize(height) * localisedSize(width);
        SDVariable hidden = Relu.apply(sd, Conv.linear(sd, f.reshape(-1, flat), p.get(FC1_WEIGHT), flat, HIDDEN)
                .add(p.get(FC1_BIAS)));
        return Conv.linear(sd, hidden, p.get(FC2_WEIGHT), HIDDEN, 6).add(p.get(FC2_BIAS)).reshape(-1, 2, 3);
    }

    /** Builder; defaults are the reference's (output size = input size, alignCorners false). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long height;
        private long width;
        private long outHeight;
        private long outWidth;
        private boolean outSizeGiven;
        private boolean alignCorners;

        /** Input size (optional: inferred from the network's input type). */
        public Builder inputSize(long height, long width) {
            this.height = height;
            this.width = width;
            return this;
        }

        /** Square output size (default: the input size). */
        public Builder outSize(long size) {
            return outSize(size, size);
        }

        /** Output size (default: the input size). */
        public Builder outSize(long height, long width) {
            this.outHeight = height;
            this.outWidth = width;
            this.outSizeGiven = true;
            return this;
        }

        /** Grid convention of {@code affine_grid} / {@code grid_sample} (default false, as PyTorch). */
        public Builder alignCorners(boolean alignCorners) {
            this.alignCorners = alignCorners;
            return this;
        }

        @Override
        public SpatialTransformer build() {
            SpatialTransformer l = new SpatialTransformer(this);
            if (outSizeGiven) {
                Shapes.requirePositive(l, "outHeight", outHeight);
                Shapes.requirePositive(l, "outWidth", outWidth);
            }
            return validated(l);
        }
    }
}
