package io.github.dl4jcnnplugins.base;

import lombok.Data;
import lombok.EqualsAndHashCode;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;

import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Base of every single-input plug-in: a DL4J {@link SameDiffLayer} configuration whose runtime class is
 * {@link PluginLayerImpl} (correct gradients, training flag, BatchNorm running statistics, quiet).
 *
 * <p>A plug-in supplies four things: its parameters ({@link #paramSpecs()}, in PyTorch layout and with
 * PyTorch names), its output size ({@link #outputShape(long, long, long)}, which also rejects inputs that are
 * too small), its math ({@link #define(PluginContext, SDVariable, Map)}) and its hyper-parameter checks
 * ({@link #validate()}, called by {@code build()}). Input channels are inferred from the {@link InputType}
 * ({@code nIn}); input must be NCHW.
 */
@Data
@EqualsAndHashCode(callSuper = true)
@NoArgsConstructor
public abstract class PluginLayer extends SameDiffLayer implements TorchMapped {

    /** Number of input channels; inferred from the input type unless set explicitly. */
    protected long nIn;

    protected PluginLayer(Builder<?> b) {
        super(b);
        this.nIn = b.nIn;
    }

    // ---------------------------------------------------------------- what a plug-in implements

    /** The parameters for the current {@code nIn}, in a fixed order. */
    @Override
    public abstract List<ParamSpec> paramSpecs();

    /** Output {@code {channels, height, width}} for an input of the given size; throws if the size is invalid. */
    public abstract long[] outputShape(long channels, long height, long width);

    /** The plug-in's math on {@code x [N, nIn, H, W]}; {@code p} holds the parameters by {@link ParamSpec#key()}. */
    public abstract SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p);

    /** Checks the hyper-parameters; throws {@link IllegalArgumentException} naming the bad one. */
    public abstract void validate();

    /** Checks the hyper-parameters that depend on the number of input channels (called once {@code nIn} is known). */
    protected void validateChannels(long channels) {
    }

    /** Hyper-parameters for messages, e.g. {@code "reduction=16"}. */
    @Override
    public abstract String describe();

    /** Non-trainable constants the reference module keeps in its state_dict (e.g. BlurPool's {@code filt}),
     *  by PyTorch name; the importer checks that imported values equal them. */

    // ---------------------------------------------------------------- shared behaviour

    @Override
    public String instanceName() {
        return getLayerName();
    }

    protected IllegalArgumentException error(String message) {
        return new IllegalArgumentException(label() + ": " + message);
    }


    private void requireNIn() {
        if (nIn <= 0) {
            throw error("the number of input channels is not known: give the network an input type "
                    + "(setInputTypes / setInputType) or set nIn on the builder");
        }
    }

    @Override
    public void defineParameters(SDLayerParams params) {
        requireNIn();
        ParamSpec.declareAll(paramSpecs(), params);
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        ParamSpec.initializeAll(paramSpecs(), params);
    }

    @Override
    public SDVariable defineLayer(SameDiff sd, SDVariable layerInput, Map<String, SDVariable> paramTable, SDVariable mask) {
        // Only reached through DL4J's stock runtime class (which has no training mode); ours calls define(...) directly.
        return define(new PluginContext(sd, layerInput.dataType(), List.of(layerInput.getShape()), false), layerInput, paramTable);
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> listeners, int layerIndex,
                             INDArray paramsView, boolean initializeParams, DataType networkDataType) {
        PluginLayerImpl ret = new PluginLayerImpl(conf, networkDataType);
        ret.setIndex(layerIndex);
        ret.setParamsViewArray(paramsView);
        ret.setParamTable(initializer().init(conf, paramsView, initializeParams));
        ret.setConf(conf);
        ret.setListeners(listeners);
        return ret;
    }

    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return isRunningStat(paramName) ? new NoOp() : super.getUpdaterByParam(paramName);
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return isRunningStat(paramName) ? Collections.emptyList() : super.getRegularizationByParam(paramName);
    }

    /** Checks that {@code type} is an NCHW convolutional input type and returns it. */
    protected InputType.InputTypeConvolutional convolutional(InputType type) {
        if (!(type instanceof InputType.InputTypeConvolutional c)) {
            throw error("expected a convolutional input (InputType.convolutional(h, w, c)); got " + type);
        }
        if (c.getFormat() != CNN2DFormat.NCHW) {
            throw error("only NCHW activations are supported; got " + type);
        }
        return c;
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        InputType.InputTypeConvolutional c = convolutional(inputType);
        if (nIn <= 0 || override) {
            nIn = c.getChannels();
        } else if (nIn != c.getChannels()) {
            throw error("configured for " + nIn + " input channels; got input type " + inputType);
        }
        validateChannels(nIn);
        setLayerParams(null); // parameter shapes depend on nIn: drop DL4J's cached copy
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        InputType.InputTypeConvolutional c = convolutional(inputType);
        if (nIn > 0 && c.getChannels() != nIn) {
            throw error("expected " + nIn + " input channels; got input type " + inputType);
        }
        long[] o = outputShape(c.getChannels(), c.getHeight(), c.getWidth());
        return InputType.convolutional(o[1], o[2], o[0]);
    }

    @Override
    public void validateInput(INDArray input) {
        long[] s = input.shape();
        if (s.length != 4 || s[1] != nIn) {
            throw error("expected input [N, " + nIn + ", H, W] (NCHW); got " + Arrays.toString(s));
        }
        outputShape(s[1], s[2], s[3]);
    }

    /** DL4J-style builder base: {@code nIn} plus everything {@link SameDiffLayer.Builder} offers. */
    public abstract static class Builder<T extends Builder<T>> extends SameDiffLayer.Builder<T> {
        protected long nIn;

        /** Number of input channels (optional: inferred from the network's input type). */
        @SuppressWarnings("unchecked")
        public T nIn(long nIn) {
            this.nIn = nIn;
            return (T) this;
        }

        @Override
        public abstract PluginLayer build();

        /** Validates a freshly built layer (hyper-parameters, and channel rules when {@code nIn} was given). */
        protected <L extends PluginLayer> L validated(L layer) {
            layer.validate();
            if (layer.getNIn() > 0) {
                layer.validateChannels(layer.getNIn());
            }
            return layer;
        }
    }
}
