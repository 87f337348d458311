package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

/**
 * CoordConv: a convolution that also sees the pixel coordinates.
 *
 * <p>Paper: R. Liu et al., "An Intriguing Failing of Convolutional Neural Networks and the CoordConv Solution",
 * NeurIPS 2018, <a href="https://arxiv.org/abs/1807.03247">arXiv:1807.03247</a>. Mirrors {@code CoordConv} of the
 * reference ({@code shared/reference/torch_plugins.py}).
 *
 * <pre>
 *   xx[i, j] = linspace(-1, 1, W)[j],  yy[i, j] = linspace(-1, 1, H)[i],  rr = sqrt(xx^2 + yy^2) (withR)
 *   out = conv(cat([x, xx, yy (, rr)], dim=1))        [N, nOut, H', W'], ordinary conv output size
 * </pre>
 * ({@code linspace(-1, 1, 1) = [-1]}.) The convolution over the concatenation is computed as a convolution of
 * {@code x} plus a convolution of the (batch-independent) coordinate channels, which is the same sum.
 *
 * <p>Parameters (DL4J key = PyTorch name): {@code conv.weight} {@code [nOut, C + 2 (+1), k, k]} with the
 * coordinate channels last in the order x, y, r; {@code conv.bias} {@code [nOut]}.
 *
 * <pre>{@code
 * .addLayer("coord", new CoordConv.Builder().nOut(64).kernelSize(3).padding(1).withR(true).build(), "in")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class CoordConv extends PluginLayer {
    public static final String WEIGHT = ParamSpec.key("conv.weight");
    public static final String BIAS = ParamSpec.key("conv.bias");

    private long nOut;
    private int kernelSize = 3;
    private int stride = 1;
    private int padding = 1;
    /** Whether to add the radius channel r = sqrt(x^2 + y^2). Default false. */
    private boolean withR;

    private CoordConv(Builder b) {
        super(b);
        this.nOut = b.nOut;
        this.kernelSize = b.kernelSize;
        this.stride = b.stride;
        this.padding = b.padding;
        this.withR = b.withR;
    }

    private int extraChannels() {
        return withR ? 3 : 2;
    }

    private Conv.Spec spec() {
        return Conv.Spec.of(kernelSize, stride, padding);
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "nOut", nOut);
        Shapes.requirePositive(this, "kernelSize", kernelSize);
        Shapes.requirePositive(this, "stride", stride);
        Shapes.requireNonNegative(this, "padding", padding);
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", kernelSize=" + kernelSize + ", stride=" + stride + ", padding=" + padding
                + ", withR=" + withR;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        long in = nIn + extraChannels();
        return List.of(ParamSpec.weight("conv.weight", nOut, in, kernelSize, kernelSize),
                ParamSpec.bias("conv.bias", in * kernelSize * kernelSize, nOut));
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        long oh = spec().outH(height);
        long ow = spec().outW(width);
        Shapes.requireOutput(this, height, width, oh, ow);
        return new long[]{nOut, oh, ow};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        SDVariable w = p.get(WEIGHT);
        SDVariable wx = w.get(SDIndex.all(), SDIndex.interval(0L, nIn), SDIndex.all(), SDIndex.all());
        SDVariable wc = w.get(SDIndex.all(), SDIndex.interval(nIn, nIn + extraChannels()), SDIndex.all(), SDIndex.all());
        SDVariable coords = sd.constant(coordinateChannels(s[2], s[3], withR, ctx.dataType()));
        SDVariable fromX = Conv.conv2d(sd, x, wx, p.get(BIAS), nIn, nOut, spec(), s[2], s[3]);
        SDVariable fromCoords = Conv.conv2d(sd, coords, wc, null, extraChannels(), nOut, spec(), s[2], s[3]); // [1, nOut, H', W']
        return fromX.add(fromCoords);
    }

    /** The {@code [1, 2 or 3, H, W]} coordinate channels (x, y, then r if {@code withR}). */
    public static INDArray coordinateChannels(long h, long w, boolean withR, DataType dataType) {
        double[][][][] c = new double[1][withR ? 3 : 2][(int) h][(int) w];
        for (int i = 0; i < h; i++) {
            for (int j = 0; j < w; j++) {
                double xx = linspace(j, w);
                double yy = linspace(i, h);
                c[0][0][i][j] = xx;
                c[0][1][i][j] = yy;
                if (withR) {
                    c[0][2][i][j] = Math.sqrt(xx * xx + yy * yy);
                }
            }
        }
        return Nd4j.createFromArray(c).castTo(dataType);
    }

    /** {@code torch.linspace(-1, 1, n)[i]}. */
    static double linspace(long i, long n) {
        return n == 1 ? -1.0 : -1.0 + 2.0 * i / (n - 1);
    }

    /** Builder; defaults are the reference's (kernel 3, stride 1, padding 1, no r channel). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long nOut;
        private int kernelSize = 3;
        private int stride = 1;
        private int padding = 1;
        private boolean withR;

        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        public Builder kernelSize(int kernelSize) {
            this.kernelSize = kernelSize;
            return this;
        }

        public Builder stride(int stride) {
            this.stride = stride;
            return this;
        }

        public Builder padding(int padding) {
            this.padding = padding;
            return this;
        }

        /** Also append the radius channel sqrt(x^2 + y^2). */
        public Builder withR(boolean withR) {
            this.withR = withR;
            return this;
        }

        @Override
        public CoordConv build() {
            return validated(new CoordConv(this));
        }
    }
}
