package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.ConvBnAct;
import io.github.dl4jcnnplugins.ops.Relu;
import io.github.dl4jcnnplugins.ops.Shapes;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Receptive Field Block: three branches of growing kernel size and dilation, fused by a 1x1 convolution and added
 * to a shortcut, mimicking the eccentricity-dependent receptive fields of human vision.
 *
 * <p>Paper: S. Liu, D. Huang, Y. Wang, "Receptive Field Block Net for Accurate and Fast Object Detection",
 * ECCV 2018, <a href="https://arxiv.org/abs/1711.07767">arXiv:1711.07767</a>. Mirrors {@code RFB} of the reference
 * ({@code shared/reference/torch_plugins.py}), which is {@code BasicRFB} of the official RFBNet code.
 *
 * <pre>
 *   i = C / 8,  v = visual,  BC(cin, cout, k, stride, pad, dil) = ReLU(BN(conv)), BC' = the same without ReLU
 *   b0  = BC'(2i, 2i, 3, 1, v, v)             (BC(C, 2i, 1, stride, 0)(x))
 *   b1  = BC'(2i, 2i, 3, 1, v+1, v+1)         (BC(i, 2i, 3, stride, 1)(BC(C, i, 1, 1, 0)(x)))
 *   b2  = BC'(2i, 2i, 3, 1, 2v+1, 2v+1)       (BC(3(i/2), 2i, 3, stride, 1)(BC(i, 3(i/2), 3, 1, 1)(BC(C, i, 1, 1, 0)(x))))
 *   out = ReLU(BC'(6i, nOut, 1)(cat[b0, b1, b2]) * scale + BC'(C, nOut, 1, stride, 0)(x))
 * </pre>
 * Input {@code [N, C, H, W]}, output {@code [N, nOut, H', W']} with {@code H' = floor((H - 1) / stride) + 1}
 * (same for W). Every BC is {@link ConvBnAct} with BatchNorm momentum 0.01 and eps 1e-5 (the reference's), PyTorch
 * semantics. {@code C} must be at least 16 so that every branch has channels ({@code 3 (i/2) >= 1}).
 *
 * <p>Parameters (DL4J key = {@link ParamSpec#key PyTorch name}), for each block
 * {@code branch0.{0,1}}, {@code branch1.{0,1,2}}, {@code branch2.{0,1,2,3}}, {@code ConvLinear}, {@code shortcut}:
 * {@code <block>.conv.weight} {@code [cout, cin, k, k]} and {@code <block>.bn.{weight, bias, running_mean,
 * running_var}} {@code [cout]}.
 *
 * <pre>{@code
 * .addLayer("rfb", new Rfb.Builder().nOut(512).scale(0.1).visual(1).build(), "conv4_3")
 * }</pre>
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class Rfb extends PluginLayer {
    public static final String CONV_LINEAR = "ConvLinear";
    public static final String SHORTCUT = "shortcut";

    private long nOut;
    private int stride = 1;
    /** Weight of the fused branches against the shortcut (default 0.1). */
    private double scale = 0.1;
    /** Base dilation of the 3x3 convolutions closing the branches (default 1). */
    private int visual = 1;
    private double bnMomentum = 0.01;
    private double bnEps = 1e-5;

    private Rfb(Builder b) {
        super(b);
        this.nOut = b.nOut;
        this.stride = b.stride;
        this.scale = b.scale;
        this.visual = b.visual;
        this.bnMomentum = b.bnMomentum;
        this.bnEps = b.bnEps;
    }

    private ConvBnAct basicConv(String name, long in, long out, int kernel, int stride, int padding, int dilation,
                                boolean relu) {
        return ConvBnAct.named(name, in, out, Conv.Spec.of(kernel, stride, padding, dilation, 1), bnMomentum, bnEps,
                relu ? Activation.RELU : Activation.IDENTITY);
    }

    /** The three branches, each a chain of blocks applied to the input in order. */
    private List<List<ConvBnAct>> branches() {
        long i = nIn / 8;
        int v = visual;
        return List.of(
                List.of(basicConv("branch0.0", nIn, 2 * i, 1, stride, 0, 1, true),
                        basicConv("branch0.1", 2 * i, 2 * i, 3, 1, v, v, false)),
                List.of(basicConv("branch1.0", nIn, i, 1, 1, 0, 1, true),
                        basicConv("branch1.1", i, 2 * i, 3, stride, 1, 1, true),
                        basicConv("branch1.2", 2 * i, 2 * i, 3, 1, v + 1, v + 1, false)),
                List.of(basicConv("branch2.0", nIn, i, 1, 1, 0, 1, true),
                        basicConv("branch2.1", i, (i / 2) * 3, 3, 1, 1, 1, true),
                        basicConv("branch2.2", (i / 2) * 3, 2 * i, 3, stride, 1, 1, true),
                        basicConv("branch2.3", 2 * i, 2 * i, 3, 1, 2 * v + 1, 2 * v + 1, false)));
    }

    private ConvBnAct convLinear() {
        return basicConv(CONV_LINEAR, 6 * (nIn / 8), nOut, 1, 1, 0, 1, false);
    }

    private ConvBnAct shortcut() {
        return basicConv(SHORTCUT, nIn, nOut, 1, stride, 0, 1, false);
    }

    @Override
    public void validate() {
        Shapes.requirePositive(this, "nOut", nOut);
        Shapes.requirePositive(this, "stride", stride);
        Shapes.requirePositive(this, "visual", visual);
        if (!Double.isFinite(scale)) {
            throw error("invalid value for `scale`: expected a finite value; got scale=" + scale);
        }
        if (!(bnMomentum >= 0 && bnMomentum <= 1)) {
            throw error("invalid value for `bnMomentum`: expected a value in [0, 1]; got bnMomentum=" + bnMomentum);
        }
        if (!(bnEps > 0)) {
            throw error("invalid value for `bnEps`: expected a strictly positive value; got bnEps=" + bnEps);
        }
    }

    @Override
    protected void validateChannels(long channels) {
        if (channels < 16) {
            throw error("needs at least 16 input channels (in_planes / 8 = " + channels / 8 + " inter channels, and "
                    + "branch 2 has 3 * (inter / 2) = " + (channels / 8 / 2) * 3 + "); got " + channels + " channels");
        }
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", stride=" + stride + ", scale=" + scale + ", visual=" + visual;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        List<ConvBnAct> all = new ArrayList<>();
        branches().forEach(all::addAll);
        all.add(convLinear());
        all.add(shortcut());
        return ConvBnAct.params(all);
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        Shapes.requireSpatial(this, height, width, 1, 1);
        ConvBnAct s = shortcut();
        return new long[]{nOut, s.outH(height), s.outW(width)};
    }

    /**
     * The branches' heads (1x1 convolutions of the input) that share their hyper-parameters run as one block, their
     * tails (the closing dilated 3x3 convolutions, concatenated anyway) share one BatchNorm
     * ({@link ConvBnAct#applyParallel}, {@link ConvBnAct#applyConcatenated}: the same values, fewer ops).
     */
    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        long[] s = ctx.inputShape(0);
        List<List<ConvBnAct>> branches = branches();
        int n = branches.size();
        SDVariable[] heads = new SDVariable[n];
        Map<Conv.Spec, List<Integer>> byConv = new LinkedHashMap<>();
        for (int b = 0; b < n; b++) {
            byConv.computeIfAbsent(branches.get(b).get(0).conv(), k -> new ArrayList<>()).add(b);
        }
        for (List<Integer> group : byConv.values()) {
            SDVariable[] ys = ConvBnAct.applyParallel(ctx, x, p, s[2], s[3],
                    group.stream().map(b -> branches.get(b).get(0)).toList());
            for (int k = 0; k < ys.length; k++) {
                heads[group.get(k)] = ys[k];
            }
        }
        List<SDVariable> tailInputs = new ArrayList<>();
        long[] hs = new long[n];
        long[] ws = new long[n];
        for (int b = 0; b < n; b++) {
            List<ConvBnAct> chain = branches.get(b);
            SDVariable y = heads[b];
            long h = chain.get(0).outH(s[2]);
            long w = chain.get(0).outW(s[3]);
            for (ConvBnAct block : chain.subList(1, chain.size() - 1)) {
                y = block.apply(ctx, y, p, h, w);
                h = block.outH(h);
                w = block.outW(w);
            }
            tailInputs.add(y);
            hs[b] = h;
            ws[b] = w;
        }
        SDVariable branchesOut = ConvBnAct.applyConcatenated(ctx, tailInputs, p, hs, ws,
                branches.stream().map(chain -> chain.get(chain.size() - 1)).toList());
        ConvBnAct shortcut = shortcut();
        long oh = shortcut.outH(s[2]);
        long ow = shortcut.outW(s[3]);                    // every branch ends at this size too
        SDVariable fused = convLinear().apply(ctx, branchesOut, p, oh, ow);
        return Relu.apply(sd, fused.mul(scale).add(shortcut.apply(ctx, x, p, s[2], s[3])));
    }

    /** Builder; defaults are the reference's (stride 1, scale 0.1, visual 1, BN momentum 0.01, eps 1e-5). */
    public static class Builder extends PluginLayer.Builder<Builder> {
        private long nOut;
        private int stride = 1;
        private double scale = 0.1;
        private int visual = 1;
        private double bnMomentum = 0.01;
        private double bnEps = 1e-5;

        /** Output channels ({@code out_planes}). */
        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        /** Stride of the block (default 1). */
        public Builder stride(int stride) {
            this.stride = stride;
            return this;
        }

        /** Weight of the fused branches against the shortcut (default 0.1). */
        public Builder scale(double scale) {
            this.scale = scale;
            return this;
        }

        /** Base dilation of the branches' last 3x3 convolutions: v, v + 1, 2v + 1 (default 1). */
        public Builder visual(int visual) {
            this.visual = visual;
            return this;
        }

        /** BatchNorm momentum, PyTorch convention (default 0.01; DL4J's decay is 1 - momentum). */
        public Builder bnMomentum(double bnMomentum) {
            this.bnMomentum = bnMomentum;
            return this;
        }

        /** BatchNorm epsilon (default 1e-5). */
        public Builder bnEps(double bnEps) {
            this.bnEps = bnEps;
            return this;
        }

        @Override
        public Rfb build() {
            return validated(new Rfb(this));
        }
    }
}
