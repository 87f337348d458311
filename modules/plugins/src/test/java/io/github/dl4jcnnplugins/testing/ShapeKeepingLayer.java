package io.github.dl4jcnnplugins.testing;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginLayer;

import java.util.List;

/**
 * Base of the tests' own plug-in layers that keep the input's shape: no parameters unless overridden, output shape =
 * input shape, nothing to validate.
 */
public abstract class ShapeKeepingLayer extends PluginLayer {
    @Override
    public List<ParamSpec> paramSpecs() {
        return List.of();
    }

    @Override
    public long[] outputShape(long channels, long height, long width) {
        return new long[]{channels, height, width};
    }

    @Override
    public void validate() {
    }
}
