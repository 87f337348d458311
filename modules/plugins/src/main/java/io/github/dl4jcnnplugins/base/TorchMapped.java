package io.github.dl4jcnnplugins.base;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/** A plug-in configuration whose parameters correspond one to one to a PyTorch module's {@code state_dict}. */
public interface TorchMapped {

    /** The parameters, with PyTorch names and layouts, for the configuration as it stands (channels known). */
    List<ParamSpec> paramSpecs();

    /** Non-trainable constants of the reference {@code state_dict} (checked on import, never loaded), by PyTorch name. */
    Map<String, INDArray> referenceBuffers(DataType dataType);

    /** The plug-in's name and hyper-parameters, for messages. */
    String label();
}
