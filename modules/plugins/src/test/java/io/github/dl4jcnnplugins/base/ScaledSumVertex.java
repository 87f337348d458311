package io.github.dl4jcnnplugins.base;

import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.nd4j.autodiff.samediff.SDVariable;

import java.util.List;
import java.util.Map;

/** A test vertex: {@code out = tanh(a) * x0 + b * x1} with per-channel {@code a, b}; both inputs of the same shape. */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public class ScaledSumVertex extends PluginVertex {
    @Override
    public int numInputs() {
        return 2;
    }

    @Override
    public List<ParamSpec> paramSpecs() {
        long c = inputChannels[0];
        return List.of(ParamSpec.weight("a", c, 1), ParamSpec.bias("b", 1, c));
    }

    @Override
    protected void configure(InputType.InputTypeConvolutional[] inputs) {
        if (inputs[0].getChannels() != inputs[1].getChannels() || inputs[0].getHeight() != inputs[1].getHeight()
                || inputs[0].getWidth() != inputs[1].getWidth()) {
            throw error("inputs must have the same shape; got " + inputs[0] + " and " + inputs[1]);
        }
    }

    @Override
    public long[] outputShape(long[][] inputs) {
        return inputs[0].clone();
    }

    @Override
    public SDVariable define(PluginContext ctx, List<SDVariable> in, Map<String, SDVariable> p) {
        long c = inputChannels[0];
        SDVariable a = ctx.sd().math().tanh(p.get("a")).reshape(1, c, 1, 1);
        return in.get(0).mul(a).add(in.get(1).mul(p.get("b").reshape(1, c, 1, 1)));
    }

    @Override
    public void validate() {
    }

    @Override
    public String describe() {
        return "";
    }
}
