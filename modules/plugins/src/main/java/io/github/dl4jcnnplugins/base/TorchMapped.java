package io.github.dl4jcnnplugins.base;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/** A plug-in configuration whose parameters correspond one to one to a PyTorch module's {@code state_dict}. */
public interface TorchMapped {

    /** The parameters, with PyTorch names and layouts, for the configuration as it stands (channels known). */
    List<ParamSpec> paramSpecs();

    /** Non-trainable constants of the reference {@code state_dict} (checked on import, never loaded), by PyTorch
     *  name, e.g. BlurPool's {@code filt}; none by default. */
    default Map<String, INDArray> referenceBuffers(DataType dataType) {
        return java.util.Collections.emptyMap();
    }

    /** {@link #paramSpecs()} by DL4J key, in order. */
    default Map<String, ParamSpec> paramSpecMap() {
        Map<String, ParamSpec> m = new java.util.LinkedHashMap<>();
        for (ParamSpec s : paramSpecs()) {
            m.put(s.key(), s);
        }
        return m;
    }

    /** The name the network gives this plug-in (layer or vertex name), or null before it has one. */
    String instanceName();

    /** Hyper-parameters for messages, e.g. {@code "reduction=16"}. */
    String describe();

    /** {@code SqueezeExcitation 'se' (reduction=16)}: the start of every error message about this plug-in. */
    default String label() {
        String d = describe();
        String n = instanceName();
        return getClass().getSimpleName() + (n != null ? " '" + n + "'" : "")
                + (d == null || d.isEmpty() ? "" : " (" + d + ")");
    }

    /** Whether parameter {@code key} is a BatchNorm running statistic (layer state, not trained). */
    default boolean isRunningStat(String key) {
        for (ParamSpec s : paramSpecs()) {
            if (s.key().equals(key)) {
                return s.kind() == ParamSpec.Kind.RUNNING_STAT;
            }
        }
        return false;
    }
}
