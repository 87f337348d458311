package io.github.dl4jcnnplugins.torch;

import io.github.dl4jcnnplugins.base.ExposesIntermediates;
import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.TorchMapped;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.graph.vertex.impl.LayerVertex;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.shade.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a plug-in the way {@code make_goldens.py} runs its reference module, and returns the same result keys:
 * {@code eval.output}, {@code train.output}, {@code grad.input.<i>}, {@code grad.param.<torch name>} for
 * {@code L = sum(train.output * grad.upstream)}, and {@code train.param.<torch name>} (running statistics after
 * the single training forward).
 *
 * <p>The plug-in is the only vertex of a {@link ComputationGraph}; the passes are driven through the vertex
 * itself, so the same code serves single-input layers and multi-input vertices.
 */
public final class ReferenceRunner {
    /** Name of the plug-in's vertex in networks built here. */
    public static final String VERTEX = "plugin";

    private ReferenceRunner() {
    }

    /** A network holding just {@code plugin}, fed by inputs of the given NCHW shapes. */
    public static ComputationGraph network(TorchMapped plugin, List<long[]> inputShapes, DataType dataType) {
        ComputationGraph net = new ComputationGraph(configuration(plugin, inputShapes, dataType));
        net.init();
        return net;
    }

    /**
     * The configuration of {@link #network}: {@code plugin} as vertex {@link #VERTEX}, the network's only output, fed
     * by inputs {@code input0, input1, ...} of the given NCHW shapes (for callers that build their own
     * {@code ComputationGraph} subclass on it).
     */
    public static ComputationGraphConfiguration configuration(TorchMapped plugin, List<long[]> inputShapes,
                                                              DataType dataType) {
        ComputationGraphConfiguration.GraphBuilder gb = new NeuralNetConfiguration.Builder()
                .dataType(dataType).updater(new NoOp()).seed(12345).graphBuilder();
        String[] names = new String[inputShapes.size()];
        InputType[] types = new InputType[inputShapes.size()];
        for (int i = 0; i < names.length; i++) {
            long[] s = inputShapes.get(i);
            names[i] = "input" + i;
            types[i] = InputType.convolutional(s[2], s[3], s[1]);
        }
        gb.addInputs(names).setInputTypes(types);
        if (plugin instanceof Layer l) {
            gb.addLayer(VERTEX, l, names);
        } else {
            gb.addVertex(VERTEX, (GraphVertex) plugin, names);
        }
        return gb.setOutputs(VERTEX).build();
    }

    /** The plug-in configuration inside {@code net} (after type inference). */
    public static TorchMapped pluginOf(ComputationGraph net) {
        org.deeplearning4j.nn.graph.vertex.GraphVertex v = net.getVertex(VERTEX);
        return (TorchMapped) (v.hasLayer() ? v.getLayer().conf().getLayer() : v.getConfig());
    }

    /** Runs one golden case: {@code module} with {@code args}, inputs and parameters from {@code npz}. */
    public static Map<String, INDArray> run(String module, JsonNode args, Map<String, INDArray> npz) {
        List<INDArray> inputs = new ArrayList<>();
        for (int i = 0; npz.containsKey("input." + i); i++) {
            inputs.add(npz.get("input." + i).castTo(DataType.DOUBLE));
        }
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException(module + ": the npz has no input.0");
        }
        List<long[]> shapes = new ArrayList<>();
        for (INDArray x : inputs) {
            shapes.add(x.shape());
        }
        ComputationGraph net = network(ReferenceModules.create(module, args), shapes, DataType.DOUBLE);
        StateDictImport.load(net, VERTEX, npz, "");
        return run(net, inputs.toArray(new INDArray[0]), npz.get("grad.upstream"));
    }

    /** Evaluation forward, training forward and backward of the plug-in in {@code net} (see the class comment). */
    public static Map<String, INDArray> run(ComputationGraph net, INDArray[] inputs, INDArray upstream) {
        TorchMapped plugin = pluginOf(net);
        org.deeplearning4j.nn.graph.vertex.GraphVertex v = net.getVertex(VERTEX);
        Map<String, INDArray> params = v.paramTable(false);
        LayerWorkspaceMgr mgr = LayerWorkspaceMgr.noWorkspaces();
        Map<String, INDArray> out = new LinkedHashMap<>();

        setInputs(v, inputs, mgr);
        out.put("eval.output", v.doForward(false, mgr).dup());
        putExposed(v, "eval.", out);
        setInputs(v, inputs, mgr);
        INDArray train = v.doForward(true, mgr).dup();
        out.put("train.output", train);
        putExposed(v, "train.", out);
        for (ParamSpec s : plugin.paramSpecs()) {
            if (s.kind() == ParamSpec.Kind.RUNNING_STAT) {
                out.put("train.param." + s.torchName(), params.get(s.key()).dup());
            }
        }
        if (upstream != null) {
            net.initGradientsView();
            setInputs(v, inputs, mgr);
            v.setEpsilon(upstream.castTo(train.dataType()));
            Pair<Gradient, INDArray[]> g = v.doBackward(false, mgr);
            for (int i = 0; i < inputs.length; i++) {
                out.put("grad.input." + i, g.getSecond()[i].dup());
            }
            Map<String, INDArray> grads = g.getFirst().gradientForVariable();
            for (ParamSpec s : plugin.paramSpecs()) {
                if (s.kind().trainable()) {
                    out.put("grad.param." + s.torchName(), grads.get(s.key()).dup());
                }
            }
        }
        return out;
    }

    /** Intermediate results the plug-in exposes (ASFF's fusion weights with vis), as {@code <prefix><key>}. */
    private static void putExposed(org.deeplearning4j.nn.graph.vertex.GraphVertex v, String prefix, Map<String, INDArray> out) {
        Object runtime = v.hasLayer() ? v.getLayer() : v;
        if (runtime instanceof ExposesIntermediates e) {
            for (Map.Entry<String, INDArray> x : e.exposed().entrySet()) {
                out.put(prefix + x.getKey(), x.getValue().dup());
            }
        }
    }

    private static void setInputs(org.deeplearning4j.nn.graph.vertex.GraphVertex v, INDArray[] inputs, LayerWorkspaceMgr mgr) {
        v.setInputs(inputs);
        if (v instanceof LayerVertex lv) {
            lv.applyPreprocessorAndSetInput(mgr);
        }
    }
}
