package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.imports.converters.ImportClassMapping;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.CustomOpDescriptor;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.exception.ND4JIllegalStateException;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A SameDiff op that runs an existing single-output native kernel under a name of its own, so that a subclass can
 * give it a different gradient ({@code doDiff}).
 *
 * <p>The own name matters because SameDiff copies every op through its FlatBuffers form when it builds the gradient
 * function and re-creates it by name: under the native name it would come back as ND4J's stock class, with the stock
 * gradient. Subclasses call {@link #register} for their name once (a static initialiser) and need a public no-argument
 * constructor for that re-creation; integer arguments survive the copy (the native kernels used here ignore extra
 * ones).
 */
public abstract class NativeAlias extends DynamicCustomOp {

    /** For SameDiff's reflective re-creation only. */
    protected NativeAlias() {
    }

    protected NativeAlias(SameDiff sd, SDVariable... args) {
        super(null, sd, args, false);
    }

    /** Makes SameDiff re-create {@code prototype}'s class for ops named {@code name}. */
    protected static void register(String name, NativeAlias prototype) {
        ImportClassMapping.getOpNameMapping().putIfAbsent(name, prototype);
    }

    /**
     * The number of elements of {@code x} along {@code dims} (the product of those sizes), as a scalar of {@code x}'s
     * data type computed from its run-time shape: the divisor of a mean over those dimensions in a gradient.
     */
    protected static SDVariable sizeProduct(SameDiff sameDiff, SDVariable x, int... dims) {
        SDVariable shape = sameDiff.shape(x).castTo(x.dataType());
        SDVariable n = shape.get(SDIndex.point(dims[0]));
        for (int i = 1; i < dims.length; i++) {
            n = n.mul(shape.get(SDIndex.point(dims[i])));
        }
        return n;
    }

    /**
     * The dimensions this reduction reduces (its integer arguments) and {@code g}, the gradient of its output, with
     * those dimensions back as size 1 unless the reduction kept them (its first boolean argument): a gradient that
     * broadcasts against the input.
     */
    protected SDVariable withReducedDims(SDVariable g, int[] dims) {
        if (bArguments.isEmpty() || !bArguments.get(0)) {
            for (int d : dims) {   // ascending: each restored dimension is where the input had it
                g = sameDiff.expandDims(g, d);
            }
        }
        return g;
    }

    /** The op's integer arguments as dimensions. */
    protected int[] dims() {
        return Arrays.stream(iArgs()).mapToInt(Math::toIntExact).toArray();
    }

    /** Name of the native kernel that executes this op. */
    protected abstract String nativeName();

    @Override
    public int getNumOutputs() {
        return 1;
    }

    @Override
    public long opHash() {
        return getDescriptor().getHash();
    }

    /** The native kernel's descriptor (this op's own name is unknown to the native library). */
    @Override
    public CustomOpDescriptor getDescriptor() {
        CustomOpDescriptor desc = Nd4j.getExecutioner().getCustomOperations().get(nativeName());
        if (desc == null) {
            throw new ND4JIllegalStateException("native op '" + nativeName() + "' is missing");
        }
        return desc;
    }

    /** No named properties: arguments travel as integer arguments. */
    @Override
    public Map<String, Object> propertiesForFunction() {
        return Collections.emptyMap();
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> dataTypes) {
        return Collections.singletonList(dataTypes.get(0));
    }
}
