package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.DeformConv;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Deformable convolution, v1 or (with {@code modulation}) v2: every kernel tap samples the input at a learned
 * fractional offset from its regular position, optionally scaled by a learned mask.
 *
 * <p>Papers: J. Dai et al., "Deformable Convolutional Networks", ICCV 2017,
 * <a href="https://arxiv.org/abs/1703.06211">arXiv:1703.06211</a>; X. Zhu, H. Hu, S. Lin, J. Dai, "Deformable
 * ConvNets v2: More Deformable, Better Results", CVPR 2019, <a href="https://arxiv.org/abs/1811.11168">arXiv:1811.11168</a>.
 * Mirrors {@code DeformConv2d} of the reference ({@code shared/reference/torch_plugins.py}): torchvision's
 * {@code deform_conv2d} with the offsets (and mask) predicted from the input by ordinary convolutions.
 *
 * <pre>
 *   offset = p_conv(x)               [N, 2 * G * K, H_out, W_out]   layout [N, G, K, (dy, dx), H_out, W_out]
 *   mask   = sigmoid(m_conv(x))      [N, G * K, H_out, W_out]       (v2; v1 uses mask = 1)
 *   out    = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)    (see {@link DeformConv})
 * </pre>
 * {@code K = kH * kW} (taps row-major), {@code G = offsetGroups} (contiguous channel blocks share offsets).
 * {@code p_conv} and {@code m_conv} have the same kernel, stride, padding and dilation as the deformable conv, with
 * bias, and start at zero: a fresh v1 layer equals a plain convolution, a fresh v2 layer half of one.
 *
 * <p>Input {@code [N, C, H, W]}, output {@code [N, nOut, H_out, W_out]} with the ordinary convolution size
 * {@code floor((H + 2p - d(k-1) - 1) / s) + 1}. Kernel, stride, padding and dilation may differ per axis.
 *
 * <p>Parameters (DL4J key = PyTorch name, {@code '_'} written {@code '-'}): {@code weight [nOut, C/groups, kH, kW]},
 * {@code bias [nOut]} (only with {@code hasBias}), {@code p_conv.weight [2GK, C, kH, kW]}, {@code p_conv.bias [2GK]},
 * {@code m_conv.weight [GK, C, kH, kW]}, {@code m_conv.bias [GK]} (only with {@code modulation}).
 *
 * <pre>{@code
 * .addLayer("dcn", new DeformConv2d.Builder().nOut(64).kernelSize(3).padding(1).modulation(true).build(), "conv")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class DeformConv2d extends PluginLayer {
    public static final String WEIGHT = ParamSpec.key("weight");
    public static final String BIAS = ParamSpec.key("bias");
    public static final String OFFSET_WEIGHT = ParamSpec.key("p_conv.weight");
    public static final String OFFSET_BIAS = ParamSpec.key("p_conv.bias");
    public static final String MASK_WEIGHT = ParamSpec.key("m_conv.weight");
    public static final String MASK_BIAS = ParamSpec.key("m_conv.bias");

    private long nOut;
    /** Kernel size {@code {kH, kW}}. Default 3x3. */
    private int[] kernelSize = {3, 3};
    /** Stride {@code {sH, sW}}. Default 1. */
    private int[] stride = {1, 1};
    /** Zero padding {@code {pH, pW}}. Default 1. */
    private int[] padding = {1, 1};
    /** Dilation {@code {dH, dW}}. Default 1. */
    private int[] dilation = {1, 1};
    /** Weight groups (as in a grouped convolution). Default 1. */
    private int groups = 1;
    /** Offset groups: channel blocks with their own offsets (and mask). Default 1. */
    private int offsetGroups = 1;
    /** Whether the deformable conv has a bias. Default false (as the reference). */
    private boolean hasBias;
    /** DCN v2: modulate every tap by {@code sigmoid(m_conv(x))}. Default false (v1). */
    private boolean modulation;

    private DeformConv2d(Builder b) {
        super(b);
        this.nOut = b.nOut;
        this.kernelSize = b.kernelSize.clone();
        this.stride = b.stride.clone();
        this.padding = b.padding.clone();
        this.dilation = b.dilation.clone();
        this.groups = b.groups;
        this.offsetGroups = b.offsetGroups;
        this.hasBias = b.hasBias;
        this.modulation = b.modulation;
    }

    private int taps() {
        return kernelSize[0] * kernelSize[1];
    }

    private Conv.Spec spec(int g) {
        return new Conv.Spec(kernelSize[0], kernelSize[1], stride[0], stride[1], padding[0], padding[1],
                dilation[0], dilation[1], g);
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "nOut", nOut);
        requirePair("kernelSize", kernelSize, 1);
        requirePair("stride", stride, 1);
        requirePair("padding", padding, 0);
        requirePair("dilation", dilation, 1);
        Shapes.requirePositive(this, "groups", groups);
        Shapes.requirePositive(this, "offsetGroups", offsetGroups);
        if (nOut % groups != 0) {
            throw error("nOut must be divisible by groups; got nOut=" + nOut + ", groups=" + groups);
        }
    }

    private void requirePair(String name, int[] v, int min) {
        if (v == null || v.length != 2) {
            throw error("invalid value for `" + name + "`: expected {height, width}; got "
                    + (v == null ? "null" : java.util.Arrays.toString(v)));
        }
        for (int x : v) {
            if (x < min) {
                throw error("invalid value for `" + name + "`: expected values >= " + min + "; got " + name + "="
                        + java.util.Arrays.toString(v));
            }
        }
    }

    @Override
    protected void validateChannels(long channels) {
        if (channels % groups != 0) {
            throw error("the number of input channels must be divisible by groups; got " + channels
                    + " channels, groups=" + groups);
        }
        if (channels % offsetGroups != 0) {
            throw error("the number of input channels must be divisible by offsetGroups; got " + channels
                    + " channels, offsetGroups=" + offsetGroups);
        }
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", kernelSize=" + pair(kernelSize) + ", stride=" + pair(stride) + ", padding="
                + pair(padding) + ", dilation=" + pair(dilation) + ", groups=" + groups + ", offsetGroups="
                + offsetGroups + ", hasBias=" + hasBias + ", modulation=" + modulation;
    }

    private static String pair(int[] v) {
        return v == null || v.length != 2 ? String.valueOf(v) : v[0] == v[1] ? String.valueOf(v[0]) : v[0] + "x" + v[1];
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        long k = taps();
        long og = offsetGroups;
        List<ParamSpec> s = new ArrayList<>();
        s.add(ParamSpec.weight("weight", nOut, nIn / groups, kernelSize[0], kernelSize[1]));
        if (hasBias) {
            s.add(ParamSpec.bias("bias", nIn / groups * k, nOut));
        }
        s.add(ParamSpec.of("p_conv.weight", ParamSpec.Kind.WEIGHT, ParamSpec.Init.ZERO, null,
                2 * og * k, nIn, kernelSize[0], kernelSize[1]));
        s.add(ParamSpec.of("p_conv.bias", ParamSpec.Kind.BIAS, ParamSpec.Init.ZERO, null, 2 * og * k));
        if (modulation) {
            s.add(ParamSpec.of("m_conv.weight", ParamSpec.Kind.WEIGHT, ParamSpec.Init.ZERO, null,
                    og * k, nIn, kernelSize[0], kernelSize[1]));
            s.add(ParamSpec.of("m_conv.bias", ParamSpec.Kind.BIAS, ParamSpec.Init.ZERO, null, og * k));
        }
        return s;
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        long[] in = {height, width};
        long[] reach = new long[2];
        long[] padded = new long[2];
        for (int axis = 0; axis < 2; axis++) {
            reach[axis] = (long) dilation[axis] * (kernelSize[axis] - 1) + 1;
            padded[axis] = in[axis] + 2L * padding[axis];
        }
        if (reach[0] > padded[0] || reach[1] > padded[1]) {
            throw error("the (dilated) kernel " + reach[0] + "x" + reach[1] + " is larger than the padded input "
                    + padded[0] + "x" + padded[1] + " (input " + height + "x" + width + "): reduce kernelSize or "
                    + "dilation, or increase padding");
        }
        Conv.Spec s = spec(groups);
        return new long[]{nOut, s.outH(height), s.outW(width)};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        long k = taps();
        long og = offsetGroups;
        SDVariable offset = Conv.conv2d(sd, x, p.get(OFFSET_WEIGHT), p.get(OFFSET_BIAS), nIn, 2 * og * k, spec(1),
                s[2], s[3]);
        SDVariable mask = modulation
                ? sd.nn().sigmoid(Conv.conv2d(sd, x, p.get(MASK_WEIGHT), p.get(MASK_BIAS), nIn, og * k, spec(1),
                        s[2], s[3]))
                : null;
        return DeformConv.deformConv2d(sd, x, nIn, s[2], s[3], offset, mask, p.get(WEIGHT),
                hasBias ? p.get(BIAS) : null, nOut, spec(groups), offsetGroups);
    }

    /** Builder; defaults are the reference's (3x3, stride 1, padding 1, dilation 1, no bias, v1). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long nOut;
        private int[] kernelSize = {3, 3};
        private int[] stride = {1, 1};
        private int[] padding = {1, 1};
        private int[] dilation = {1, 1};
        private int groups = 1;
        private int offsetGroups = 1;
        private boolean hasBias;
        private boolean modulation;

        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        public Builder kernelSize(int k) {
            return kernelSize(k, k);
        }

        public Builder kernelSize(int kH, int kW) {
            this.kernelSize = new int[]{kH, kW};
            return this;
        }

        public Builder stride(int s) {
            return stride(s, s);
        }

        public Builder stride(int sH, int sW) {
            this.stride = new int[]{sH, sW};
            return this;
        }

        public Builder padding(int p) {
            return padding(p, p);
        }

        public Builder padding(int pH, int pW) {
            this.padding = new int[]{pH, pW};
            return this;
        }

        public Builder dilation(int d) {
            return dilation(d, d);
        }

        public Builder dilation(int dH, int dW) {
            this.dilation = new int[]{dH, dW};
            return this;
        }

        /** Weight groups: input and output channels split into this many independent blocks. */
        public Builder groups(int groups) {
            this.groups = groups;
            return this;
        }

        /** Offset groups: input channels split into this many blocks, each with its own offsets (and mask). */
        public Builder offsetGroups(int offsetGroups) {
            this.offsetGroups = offsetGroups;
            return this;
        }

        public Builder hasBias(boolean hasBias) {
            this.hasBias = hasBias;
            return this;
        }

        /** DCN v2 (modulated): multiply every tap by a learned mask in (0, 1). */
        public Builder modulation(boolean modulation) {
            this.modulation = modulation;
            return this;
        }

        @Override
        public DeformConv2d build() {
            return validated(new DeformConv2d(this));
        }
    }
}
