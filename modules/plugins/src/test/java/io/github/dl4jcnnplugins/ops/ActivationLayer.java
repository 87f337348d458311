package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.PluginContext;
import io.github.dl4jcnnplugins.testing.ShapeKeepingLayer;
import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.activations.Activation;

import java.util.Map;

/**
 * A test layer around {@link ConvBnAct#activate} on its input times {@code scale} (so that the values reach far
 * into both tails), in the plug-in runtime's session (which executes host ops such as {@link DirectEltwise}'s).
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class ActivationLayer extends ShapeKeepingLayer {
    private Activation activation;
    private double scale;

    ActivationLayer(Activation activation, double scale) {
        this.activation = activation;
        this.scale = scale;
    }

    @Override
    public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
        return ConvBnAct.activate(ctx.sd(), x.mul(scale), activation);
    }

    @Override
    public String describe() {
        return activation + " of x * " + scale;
    }
}
