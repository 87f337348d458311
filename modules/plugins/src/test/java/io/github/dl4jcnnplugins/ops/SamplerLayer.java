package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.base.PluginLayer;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A test layer around {@link BilinearSampler#sampleChannelsLast}: the sample positions ({@code py}, {@code px}
 * {@code [groups, points]}) and the optional scale are parameters, so that a gradient check covers the gradients of
 * the image, the coordinates and the scale. Image {@code n} is sampled at the positions shifted by
 * {@code 0.05 tanh(mean(x[n]))} (positions differ per image, and the image gradient also flows through them).
 * Output {@code [N, C, 1, points]}.
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class SamplerLayer extends PluginLayer {
    private int groups = 1;
    private long points;
    private boolean scaled;
    private long height;
    private long width;

    SamplerLayer(int groups, long points, boolean scaled, long height, long width) {
        this.groups = groups;
        this.points = points;
        this.scaled = scaled;
        this.height = height;
        this.width = width;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        List<ParamSpec> p = new ArrayList<>(List.of(ParamSpec.weight("py", groups, points),
                ParamSpec.weight("px", groups, points)));
        if (scaled) {
            p.add(ParamSpec.weight("scale", groups, points));
        }
        return p;
    }

    @Override
    public long[] outputShape(long channels, long h, long w) {
        return new long[]{channels, 1, points};
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        SDVariable shift = sd.math().tanh(x.mean(1, 2, 3)).mul(0.05).reshape(-1, 1, 1);   // [N, 1, 1]
        SDVariable py = shift.add(p.get("py").reshape(1, groups, points));
        SDVariable px = shift.add(p.get("px").reshape(1, groups, points));
        SDVariable scale = scaled ? shift.mul(0.0).add(p.get("scale").reshape(1, groups, points)) : null;
        SDVariable s = BilinearSampler.sampleChannelsLast(sd, x, nIn, height, width, groups, points, py, px, scale);
        return s.permute(0, 1, 3, 2).reshape(-1, nIn, 1, points);
    }

    @Override
    public void validate() {
    }

    @Override
    public String describe() {
        return "groups=" + groups + ", points=" + points + ", scaled=" + scaled;
    }
}
