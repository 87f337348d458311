package io.github.dl4jcnnplugins.pool;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.MatMul;
import io.github.dl4jcnnplugins.ops.Pad;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

/**
 * BlurPool: anti-aliased downsampling, a fixed binomial low-pass filter followed by subsampling.
 *
 * <p>Paper: R. Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019,
 * <a href="https://arxiv.org/abs/1904.11486">arXiv:1904.11486</a>. Mirrors {@code BlurPool} of the reference
 * ({@code shared/reference/torch_plugins.py}, itself the official {@code antialiased-cnns} layer).
 *
 * <pre>
 *   a    = binomial row of length f          (f = 4: [1, 3, 3, 1])
 *   K    = outer(a, a) / sum(outer(a, a))
 *   pads = top/left (f-1)/2 + padOff, bottom/right ceil((f-1)/2) + padOff
 *   out  = depthwise_conv(pad(x), K, stride)       [N, C, H', W'],  H' = floor((H + pads - f) / stride) + 1
 *        = M_h x M_w^T per (n, c)                  (computed this way: see define)
 * </pre>
 * {@code pad} is reflection, replication or zero padding. There are no trainable parameters; the reference's
 * {@code filt} buffer ({@code [C, 1, f, f]}) is checked on import, not loaded.
 *
 * <pre>{@code
 * .addLayer("blur", new BlurPool.Builder().filterSize(4).stride(2).padType(Pad.Mode.REFLECT).build(), "relu1")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class BlurPool extends PluginLayer {
    /** Binomial rows for filter sizes 1 to 7. */
    private static final double[][] BINOMIAL = {
            {1}, {1, 1}, {1, 2, 1}, {1, 3, 3, 1}, {1, 4, 6, 4, 1}, {1, 5, 10, 10, 5, 1}, {1, 6, 15, 20, 15, 6, 1}};

    private Pad.Mode padType = Pad.Mode.REFLECT;
    private int filterSize = 4;
    private int stride = 2;
    private int padOff = 0;

    private BlurPool(Builder b) {
        super(b);
        this.padType = b.padType;
        this.filterSize = b.filterSize;
        this.stride = b.stride;
        this.padOff = b.padOff;
    }

    private int padBefore() {
        return (filterSize - 1) / 2 + padOff;
    }

    private int padAfter() {
        return filterSize / 2 + padOff;   // ceil((f - 1) / 2)
    }

    @Override
    public void validate() {
        if (filterSize < 1 || filterSize > BINOMIAL.length) {
            throw error("invalid value for `filterSize`: expected 1 to 7; got filterSize=" + filterSize);
        }
        if (padType == null) {
            throw error("invalid value for `padType`: expected reflect, replicate or zero; got null");
        }
        Shapes.requirePositive(this, "stride", stride);
        Shapes.requireNonNegative(this, "padOff", padOff);
    }

    @Override
    public String describe() {
        return "filterSize=" + filterSize + ", stride=" + stride + ", padType=" + padType + ", padOff=" + padOff;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return List.of();
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        long maxPad = Math.max(padBefore(), padAfter());
        if (maxPad > padType.maxPad(Math.min(height, width))) {
            throw error("reflection padding by " + maxPad + " needs height and width > " + maxPad + "; got "
                    + height + "x" + width);
        }
        long oh = Math.floorDiv(height + padBefore() + padAfter() - filterSize, stride) + 1;
        long ow = Math.floorDiv(width + padBefore() + padAfter() - filterSize, stride) + 1;
        Shapes.requireOutput(this, height, width, oh, ow);
        return new long[]{channels, oh, ow};
    }

    /** The normalised {@code f x f} binomial filter. */
    public static double[][] filter(int filterSize) {
        double[] a = BINOMIAL[filterSize - 1];
        double sum = 0;
        for (double v : a) {
            sum += v;
        }
        double[][] k = new double[filterSize][filterSize];
        for (int i = 0; i < filterSize; i++) {
            for (int j = 0; j < filterSize; j++) {
                k[i][j] = a[i] * a[j] / (sum * sum);
            }
        }
        return k;
    }

    @Override
    public Map<String, INDArray> referenceBuffers(DataType dataType) {
        INDArray k = Nd4j.createFromArray(filter(filterSize)).castTo(dataType);
        INDArray filt = Nd4j.create(dataType, nIn, 1, filterSize, filterSize);
        for (long c = 0; c < nIn; c++) {
            filt.get(org.nd4j.linalg.indexing.NDArrayIndex.point(c), org.nd4j.linalg.indexing.NDArrayIndex.point(0))
                    .assign(k);
        }
        return Map.of("filt", filt);
    }

    /**
     * Padding, binomial filter and subsampling along one axis as one matrix {@code [out, size]}:
     * {@code out[o] = sum_k a[k] / sum(a) * x[src(o * stride + k - before)]}, where {@code src} maps an index of the
     * padded axis to the input index it copies ({@link Pad.Mode#sourceIndex}; none for zero padding). Entries are
     * sums when reflection makes two taps read the same input element.
     */
    double[][] axisMatrix(long size) {
        double[] a = BINOMIAL[filterSize - 1];
        double sum = 0;
        for (double v : a) {
            sum += v;
        }
        int n = Math.toIntExact(size);
        int out = Math.toIntExact(Math.floorDiv(size + padBefore() + padAfter() - filterSize, stride) + 1);
        double[][] m = new double[out][n];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < filterSize; k++) {
                long src = padType.sourceIndex((long) o * stride + k - padBefore(), size);
                if (src >= 0) {
                    m[o][(int) src] += a[k] / sum;
                }
            }
        }
        return m;
    }

    /**
     * The filter is separable and the same for every channel, and padding and subsampling are linear, so the whole
     * layer is {@code out[n, c] = M_h x[n, c] M_w^T} with the {@link #axisMatrix} of each axis: two matrix
     * products on {@code [N*C*H, W]} and {@code [N*C*W', H]} views. (A depthwise convolution of the padded input
     * was 9x slower forward and 4-11x slower forward+backward at 8x256x56x56, mostly in the padding's slice
     * gradients; see BENCHMARKS.md.)
     */
    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        long c = s[1];
        long h = s[2];
        long w = s[3];
        INDArray mh = Nd4j.createFromArray(axisMatrix(h)).castTo(ctx.dataType());
        INDArray mw = Nd4j.createFromArray(axisMatrix(w)).castTo(ctx.dataType());
        long oh = mh.size(0);
        long ow = mw.size(0);
        SDVariable alongW = MatMul.of(sd, x.reshape(-1, w), sd.constant(mw.transpose().dup()));    // [N*C*H, W']
        SDVariable hLast = alongW.reshape(-1, h, ow).permute(0, 2, 1).reshape(-1, h);               // [N*C*W', H]
        SDVariable alongH = MatMul.of(sd, hLast, sd.constant(mh.transpose().dup()));               // [N*C*W', H']
        return alongH.reshape(-1, ow, oh).permute(0, 2, 1).reshape(-1, c, oh, ow);
    }

    /** Builder; defaults are the reference's (reflect, filter 4, stride 2, padOff 0). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private Pad.Mode padType = Pad.Mode.REFLECT;
        private int filterSize = 4;
        private int stride = 2;
        private int padOff = 0;

        public Builder padType(Pad.Mode padType) {
            this.padType = padType;
            return this;
        }

        /** PyTorch's names: reflect / refl, replicate / repl, zero. */
        public Builder padType(String padType) {
            try {
                this.padType = Pad.Mode.parse(padType);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("BlurPool: invalid value for `padType`: " + e.getMessage(), e);
            }
            return this;
        }

        /** Size of the binomial filter, 1 to 7 (default 4). */
        public Builder filterSize(int filterSize) {
            this.filterSize = filterSize;
            return this;
        }

        public Builder stride(int stride) {
            this.stride = stride;
            return this;
        }

        /** Extra padding added on every side (default 0). */
        public Builder padOff(int padOff) {
            this.padOff = padOff;
            return this;
        }

        @Override
        public BlurPool build() {
            return validated(new BlurPool(this));
        }
    }
}
