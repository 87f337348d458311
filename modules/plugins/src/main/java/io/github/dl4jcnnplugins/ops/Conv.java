package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.enums.WeightsFormat;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;

/**
 * 2-D convolution on NCHW activations with PyTorch-layout weights {@code [out, in/groups, kH, kW]}.
 *
 * <p>SameDiff has no {@code groups} argument: depthwise convolutions use its depthwise op, other grouped
 * convolutions are one convolution per group on channel slices, concatenated (both have checked gradients).
 */
public final class Conv {
    private Conv() {
    }

    /** Hyper-parameters of a convolution; per-axis values are {@code {h, w}}. */
    public record Spec(int kH, int kW, int sH, int sW, int pH, int pW, int dH, int dW, int groups) {
        public static Spec of(int kernel, int stride, int padding, int dilation, int groups) {
            return new Spec(kernel, kernel, stride, stride, padding, padding, dilation, dilation, groups);
        }

        public static Spec of(int kernel, int stride, int padding) {
            return of(kernel, stride, padding, 1, 1);
        }

        /** Output size along one axis: {@code floor((in + 2p - d(k-1) - 1) / s) + 1}. */
        public static long outSize(long in, int k, int s, int p, int d) {
            return Math.floorDiv(in + 2L * p - (long) d * (k - 1) - 1, s) + 1;
        }

        public long outH(long h) {
            return outSize(h, kH, sH, pH, dH);
        }

        public long outW(long w) {
            return outSize(w, kW, sW, pW, dW);
        }

        Conv2DConfig config(WeightsFormat format) {
            return Conv2DConfig.builder().kH(kH).kW(kW).sH(sH).sW(sW).pH(pH).pW(pW).dH(dH).dW(dW)
                    .paddingMode(PaddingMode.VALID).dataFormat(Conv2DConfig.NCHW).weightsFormat(format).build();
        }
    }

    /**
     * {@code conv2d(x, weight, bias)} as in PyTorch. {@code weight} is {@code [out, in/groups, kH, kW]},
     * {@code bias} is {@code [out]} or null.
     */
    public static SDVariable conv2d(SameDiff sd, SDVariable x, SDVariable weight, SDVariable bias, long inChannels,
                                    long outChannels, Spec spec) {
        int g = spec.groups();
        if (g == 1) {
            // conv2d_bp rejects OIYX weights in 1.0.0-M2.1, so give SameDiff its default [kH, kW, in, out].
            SDVariable w = weight.permute(2, 3, 1, 0);
            Conv2DConfig cfg = spec.config(WeightsFormat.YXIO);
            return bias == null ? sd.cnn().conv2d(x, w, cfg) : sd.cnn().conv2d(x, w, bias, cfg);
        }
        if (g == inChannels) {
            // Depthwise: PyTorch [C*m, 1, kH, kW] -> SameDiff [kH, kW, C, m] (output channel c*m + j in both).
            long m = outChannels / inChannels;
            SDVariable w = weight.reshape(inChannels, m, spec.kH(), spec.kW()).permute(2, 3, 0, 1);
            Conv2DConfig cfg = spec.config(WeightsFormat.YXIO);
            return bias == null ? sd.cnn().depthWiseConv2d(x, w, cfg) : sd.cnn().depthWiseConv2d(x, w, bias, cfg);
        }
        long ci = inChannels / g;
        long co = outChannels / g;
        SDVariable[] outs = new SDVariable[g];
        for (int i = 0; i < g; i++) {
            SDVariable xi = x.get(SDIndex.all(), SDIndex.interval(i * ci, (i + 1) * ci), SDIndex.all(), SDIndex.all());
            SDVariable wi = weight.get(SDIndex.interval(i * co, (i + 1) * co), SDIndex.all(), SDIndex.all(), SDIndex.all());
            SDVariable bi = bias == null ? null : bias.get(SDIndex.interval(i * co, (i + 1) * co));
            outs[i] = conv2d(sd, xi, wi, bi, ci, co, new Spec(spec.kH(), spec.kW(), spec.sH(), spec.sW(), spec.pH(),
                    spec.pW(), spec.dH(), spec.dW(), 1));
        }
        return sd.concat(1, outs);
    }

    /** A 1x1 convolution without bias as a matrix product: {@code weight} is {@code [out, in, 1, 1]} or {@code [out, in]}. */
    public static SDVariable linear(SameDiff sd, SDVariable v, SDVariable weight, long in, long out) {
        return sd.mmul(v, weight.reshape(out, in), false, true, false);
    }
}
