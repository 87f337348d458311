package io.github.dl4jcnnplugins.base;

import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.layers.samediff.SameDiffGraphVertex;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * Runtime class of every {@link PluginVertex}: DL4J's SameDiff graph vertex with the forward and backward passes
 * run by {@link PluginGraph}. Also exposes its gradient view, which the stock class never sets (so that
 * per-layer gradient normalisation and clipping work for plug-in vertices).
 */
public class PluginVertexImpl extends SameDiffGraphVertex implements ExposesIntermediates {

    private final PluginVertex plugin;
    private final PluginGraph graph;
    private INDArray gradientView;

    public PluginVertexImpl(PluginVertex config, ComputationGraph graph, String name, int vertexIndex,
                            INDArray paramsView, boolean initParams, DataType dataType) {
        super(config, graph, name, vertexIndex, paramsView, initParams, dataType);
        this.plugin = config;
        this.graph = new PluginGraph(name, (ctx, in, params) -> config.define(ctx, in, params), config.inputNames(),
                config.getVertexParams().getParamShapes(), dataType);
    }

    @Override
    public INDArray doForward(boolean training, LayerWorkspaceMgr workspaceMgr) {
        plugin.validateInput(inputs);
        return graph.forward(inputs, training, paramTable, workspaceMgr);
    }

    @Override
    public Pair<Gradient, INDArray[]> doBackward(boolean tbptt, LayerWorkspaceMgr workspaceMgr) {
        plugin.validateInput(inputs);
        Pair<Map<String, INDArray>, INDArray[]> r = graph.backward(inputs, epsilon, paramTable, gradTable, workspaceMgr);
        Gradient g = new DefaultGradient();
        for (Map.Entry<String, INDArray> e : r.getFirst().entrySet()) {
            g.gradientForVariable().put(e.getKey(), e.getValue());
        }
        return new Pair<>(g, r.getSecond());
    }

    @Override
    public void setBackpropGradientsViewArray(INDArray backpropGradientsViewArray) {
        super.setBackpropGradientsViewArray(backpropGradientsViewArray);
        this.gradientView = backpropGradientsViewArray;
    }

    @Override
    public INDArray getGradientsViewArray() {
        return gradientView;
    }

    @Override
    public boolean updaterDivideByMinibatch(String paramName) {
        return !plugin.isRunningStat(paramName);
    }

    @Override
    public Map<String, INDArray> exposed() {
        return graph.lastExposed();
    }
}
