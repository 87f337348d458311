package io.github.dl4jcnnplugins.base;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.samediff.SameDiffLayer;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runtime class of every {@link PluginLayer}: DL4J's SameDiff layer with the forward and backward passes run by
 * {@link PluginGraph} (correct gradients, training flag, running statistics, no stdout noise).
 */
public class PluginLayerImpl extends SameDiffLayer implements ExposesIntermediates {

    private PluginGraph graph;

    public PluginLayerImpl(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    private PluginLayer plugin() {
        return (PluginLayer) layerConf();
    }

    private PluginGraph graph() {
        if (graph == null) {
            PluginLayer p = plugin();
            graph = new PluginGraph(String.valueOf(p.getLayerName()), (ctx, in, params) -> p.define(ctx, in.get(0), params),
                    List.of(INPUT_KEY), p.getLayerParams().getParamShapes(), dataType);
        }
        return graph;
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        plugin().validateInput(input);
        return graph().forward(new INDArray[]{input}, training, paramTable, workspaceMgr);
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        plugin().validateInput(input);
        Pair<Map<String, INDArray>, INDArray[]> r = graph().backward(new INDArray[]{input}, epsilon, paramTable, gradTable, workspaceMgr);
        Gradient g = new DefaultGradient();
        // DL4J expects the gradient entries in the parameter order of the flattened view.
        for (String key : new ArrayList<>(paramTable.keySet())) {
            g.gradientForVariable().put(key, r.getFirst().get(key));
        }
        return new Pair<>(g, r.getSecond()[0]);
    }

    @Override
    public boolean updaterDivideByMinibatch(String paramName) {
        return !plugin().isRunningStat(paramName);
    }

    @Override
    public Map<String, INDArray> exposed() {
        return graph().lastExposed();
    }
}
