package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.testing.ShapeKeepingLayer;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Map;

/**
 * A test layer around {@link MeanMax}: {@code x} gated by {@code sigmoid(mean + 2 max)} of {@code x} over the pixels
 * ({@code overChannels = false}) or over the channels. Runs in the plug-in runtime's session (host ops).
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class PoolGateLayer extends ShapeKeepingLayer {
    private boolean overChannels;

    PoolGateLayer(boolean overChannels) {
        this.overChannels = overChannels;
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        SameDiff sd = ctx.sd();
        if (overChannels) {
            SDVariable[] s = MeanMax.along(sd, x, 1);                                   // [N, 1, H, W]
            return Mul.of(sd, x, sd.nn().sigmoid(s[0].add(s[1].mul(2))), 1);
        }
        SDVariable[] s = MeanMax.spatial(sd, x);                                        // [N, C]
        return ChannelGate.apply(sd, x, sd.nn().sigmoid(s[0].add(s[1].mul(2))), nIn);
    }

    @Override
    public String describe() {
        return "x gated by its mean and max over the " + (overChannels ? "channels" : "pixels");
    }
}
