package io.github.dl4jcnnplugins.base;

import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.samediff.SDVertexParams;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffVertex;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.shade.jackson.annotation.JsonIgnore;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Base of every multi-input plug-in: a DL4J {@link SameDiffVertex} configuration whose runtime class is
 * {@link PluginVertexImpl} (correct gradients, training flag, BatchNorm running statistics, quiet).
 *
 * <p>The counterpart of {@link PluginLayer} for several NCHW inputs: the channel counts of the inputs are
 * recorded from the input types ({@link #configure(InputType.InputTypeConvolutional[])}) when the graph
 * configuration infers its types, before the parameters are defined.
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public abstract class PluginVertex extends SameDiffVertex implements TorchMapped {

    /** Channels of each input, as last inferred from the input types (or set explicitly). */
    protected long[] inputChannels;

    // ---------------------------------------------------------------- what a plug-in implements

    /** Number of inputs. */
    public abstract int numInputs();

    @Override
    public abstract List<ParamSpec> paramSpecs();

    /** Checks the input types (shapes without the minibatch) and records what the parameters depend on. */
    protected abstract void configure(InputType.InputTypeConvolutional[] inputs);

    /** Output {@code {channels, height, width}} for inputs of the given {@code {c, h, w}}; throws if invalid. */
    public abstract long[] outputShape(long[][] inputs);

    /** The plug-in's math on the inputs (NCHW). */
    public abstract SDVariable define(PluginContext ctx, List<SDVariable> inputs, Map<String, SDVariable> p);

    /** Checks the hyper-parameters. */
    public abstract void validate();

    /** Hyper-parameters for messages. */
    @Override
    public abstract String describe();


    // ---------------------------------------------------------------- shared behaviour

    @Override
    public String instanceName() {
        return getName();
    }

    protected IllegalArgumentException error(String message) {
        return new IllegalArgumentException(label() + ": " + message);
    }

    /** Input names inside the SameDiff graph: {@code input0, input1, ...}. */
    @JsonIgnore
    public List<String> inputNames() {
        List<String> n = new ArrayList<>();
        for (int i = 0; i < numInputs(); i++) {
            n.add("input" + i);
        }
        return n;
    }

    @Override
    public void defineParametersAndInputs(SDVertexParams params) {
        if (inputChannels == null) {
            throw error("the input channels are not known: give the network its input types (setInputTypes)");
        }
        params.defineInputs(inputNames().toArray(new String[0]));
        ParamSpec.declareAll(paramSpecs(), params);
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        ParamSpec.initializeAll(paramSpecs(), params);
    }

    @Override
    public SDVariable defineVertex(SameDiff sd, Map<String, SDVariable> layerInput, Map<String, SDVariable> paramTable,
                                   Map<String, SDVariable> maskVars) {
        // Only reached through DL4J's stock runtime class (which has no training mode); ours calls define(...) directly.
        List<SDVariable> in = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        for (String n : inputNames()) {
            in.add(layerInput.get(n));
            shapes.add(layerInput.get(n).getShape());
        }
        return define(new PluginContext(sd, in.get(0).dataType(), shapes, false), in, paramTable);
    }

    @Override
    public org.deeplearning4j.nn.graph.vertex.GraphVertex instantiate(ComputationGraph graph, String name, int idx,
                                                                      INDArray paramsView, boolean initializeParams,
                                                                      DataType networkDatatype) {
        setName(name);
        return new PluginVertexImpl(this, graph, name, idx, paramsView, initializeParams, networkDatatype);
    }

    @Override
    public int minVertexInputs() {
        return numInputs();
    }

    @Override
    public int maxVertexInputs() {
        return numInputs();
    }

    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return isRunningStat(paramName) ? new NoOp() : super.getUpdaterByParam(paramName);
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return isRunningStat(paramName) ? Collections.emptyList() : super.getRegularizationByParam(paramName);
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType... vertexInputs) {
        if (vertexInputs.length != numInputs()) {
            throw error("expected " + numInputs() + " inputs; got " + vertexInputs.length);
        }
        InputType.InputTypeConvolutional[] c = new InputType.InputTypeConvolutional[vertexInputs.length];
        long[][] chw = new long[vertexInputs.length][];
        for (int i = 0; i < c.length; i++) {
            if (!(vertexInputs[i] instanceof InputType.InputTypeConvolutional t) || t.getFormat() != CNN2DFormat.NCHW) {
                throw error("input " + i + " must be convolutional NCHW (InputType.convolutional(h, w, c)); got "
                        + vertexInputs[i]);
            }
            c[i] = t;
            chw[i] = new long[]{t.getChannels(), t.getHeight(), t.getWidth()};
        }
        configure(c);
        long[] channels = new long[c.length];
        for (int i = 0; i < c.length; i++) {
            channels[i] = c[i].getChannels();
        }
        if (!Arrays.equals(channels, inputChannels)) {
            inputChannels = channels;
            setVertexParams(null);   // parameter shapes depend on the channels: drop DL4J's cached copy
        }
        long[] o = outputShape(chw);
        return InputType.convolutional(o[1], o[2], o[0]);
    }

    @Override
    public void validateInput(INDArray[] input) {
        if (input.length != numInputs()) {
            throw error("expected " + numInputs() + " inputs; got " + input.length);
        }
        long[][] chw = new long[input.length][];
        for (int i = 0; i < input.length; i++) {
            long[] s = input[i].shape();
            if (s.length != 4 || (inputChannels != null && s[1] != inputChannels[i])) {
                throw error("input " + i + " must be [N, " + (inputChannels == null ? "C" : inputChannels[i])
                        + ", H, W] (NCHW); got " + Arrays.toString(s));
            }
            chw[i] = new long[]{s[1], s[2], s[3]};
        }
        outputShape(chw);
    }

    @Override
    public GraphVertex clone() {
        try {
            String json = NeuralNetConfiguration.mapper().writeValueAsString(this);
            return NeuralNetConfiguration.mapper().readValue(json, GraphVertex.class);
        } catch (Exception e) {
            throw new IllegalStateException(label() + ": cannot clone the configuration", e);
        }
    }

}
