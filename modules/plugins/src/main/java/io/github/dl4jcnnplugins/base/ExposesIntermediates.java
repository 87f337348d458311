package io.github.dl4jcnnplugins.base;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A plug-in runtime that keeps intermediate results of its last forward pass (those its definition registered
 * with {@link PluginContext#expose}), for example ASFF's per-pixel fusion weights when {@code vis} is on.
 *
 * <pre>{@code
 * net.output(x);
 * INDArray w = ((ExposesIntermediates) net.getVertex("asff")).exposed().get("weights");
 * }</pre>
 */
public interface ExposesIntermediates {
    /** Key to array, from the last forward pass (inference or training); empty when nothing is exposed. */
    Map<String, INDArray> exposed();
}
