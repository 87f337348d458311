package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.testing.ShapeKeepingLayer;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.activations.Activation;

import java.util.List;
import java.util.Map;

/**
 * A test layer around {@link BatchNorm#apply} (then {@code activation}) on its input, shifted by {@code shift} first
 * (a batch mean far from 0), so that a BatchNorm runs in the plug-in runtime's session (which executes host ops such
 * as {@link BatchNormRelu}'s) and its running statistics are updated.
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class BatchNormLayer extends ShapeKeepingLayer {
    private double shift;
    private Activation activation = Activation.IDENTITY;

    BatchNormLayer(double shift) {
        this.shift = shift;
    }

    BatchNormLayer(double shift, Activation activation) {
        this.shift = shift;
        this.activation = activation;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        return ParamSpec.batchNorm("bn", nIn);
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        long[] s = ctx.inputShape(0);
        return BatchNorm.apply(ctx, x.add(shift), p, "bn", nIn, s[2] * s[3], 0.1, 1e-5, activation);
    }

    @Override
    public String describe() {
        return "shift=" + shift + ", activation=" + activation;
    }
}
