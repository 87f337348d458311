package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;

import java.util.List;
import java.util.Map;

/**
 * A test layer around {@link Conv#conv2d} (with bias), so that a convolution runs in the plug-in runtime's
 * session (which executes host ops such as {@link DirectConv}'s). {@code transposed} convolves the input with its
 * height and width swapped, a non-row-major view.
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class ConvLayer extends PluginLayer {
    private long nOut;
    private int kH;
    private int kW;
    private int sH;
    private int sW;
    private int pH;
    private int pW;
    private int dH;
    private int dW;
    private int groups = 1;
    private boolean transposed;

    ConvLayer(long nOut, Conv.Spec s, boolean transposed) {
        this.nOut = nOut;
        this.kH = s.kH();
        this.kW = s.kW();
        this.sH = s.sH();
        this.sW = s.sW();
        this.pH = s.pH();
        this.pW = s.pW();
        this.dH = s.dH();
        this.dW = s.dW();
        this.groups = s.groups();
        this.transposed = transposed;
    }

    Conv.Spec spec() {
        return new Conv.Spec(kH, kW, sH, sW, pH, pW, dH, dW, groups);
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return List.of(ParamSpec.weight("weight", nOut, nIn / groups, kH, kW), ParamSpec.weight("bias", nOut));
    }

    @Override
    public long[] outputShape(long channels, long h, long w) {
        long ih = transposed ? w : h;
        long iw = transposed ? h : w;
        return new long[]{nOut, spec().outH(ih), spec().outW(iw)};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        long[] s = ctx.inputShape(0);
        SDVariable in = transposed ? x.permute(0, 1, 3, 2) : x;
        long h = transposed ? s[3] : s[2];
        long w = transposed ? s[2] : s[3];
        return Conv.conv2d(ctx.sd(), in, p.get("weight"), p.get("bias"), nIn, nOut, spec(), h, w);
    }

    @Override
    public void validate() {
    }

    @Override
    public String describe() {
        return "nOut=" + nOut + ", " + spec() + (transposed ? ", transposed" : "");
    }
}
