package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.imports.converters.ImportClassMapping;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.CustomOpDescriptor;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.exception.ND4JIllegalStateException;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * {@code out[i, :] = table[indices[i], :]}: a gather along axis 0 whose gradient is a scatter-add.
 *
 * <p>Runs ND4J's native {@code gather} op, but replaces its SameDiff gradient: in 1.0.0-M2.1
 * {@code Gather.doDiff} assigns instead of adding and reads the wrong positions (see
 * {@code shared/notes/samediff-m2.1.md}, Q2), and {@code gatherNd} has none. Here
 * {@code dL/dTable = scatter_add(zeros_like(table), indices, dL/dOut)}, so the memory of both passes grows with the
 * number of gathered rows and the table size, never with their product (unlike a one-hot matrix product).
 *
 * <p>The op has its own name ({@link #OP_NAME}) so that SameDiff, which copies every op through its FlatBuffers
 * form when it builds the gradient function, recreates this class and not {@code Gather}; the name is registered
 * with ND4J's op-name table when this class is loaded. Execution uses the native {@code gather} kernel.
 * Indices get no gradient.
 */
public class RowGather extends DynamicCustomOp {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_row_gather";

    static {
        ImportClassMapping.getOpNameMapping().putIfAbsent(OP_NAME, new RowGather());
    }

    /** For SameDiff's reflective re-creation only. */
    public RowGather() {
    }

    public RowGather(SameDiff sd, SDVariable table, SDVariable indices) {
        super(null, sd, new SDVariable[]{table, indices}, false);
        addIArgument(0);   // axis
    }

    /**
     * {@code table[indices]} along axis 0: {@code table [R, ...]}, {@code indices} an integer array of any shape with
     * values in {@code [0, R)}, result {@code indices.shape + table.shape[1:]}.
     */
    public static SDVariable gather(SameDiff sd, SDVariable table, SDVariable indices) {
        return new RowGather(sd, table, indices).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    public int getNumOutputs() {
        return 1;
    }

    @Override
    public long opHash() {
        return getDescriptor().getHash();
    }

    /** The native {@code gather} kernel's descriptor (this op's own name is unknown to the native library). */
    @Override
    public CustomOpDescriptor getDescriptor() {
        CustomOpDescriptor desc = Nd4j.getExecutioner().getCustomOperations().get("gather");
        if (desc == null) {
            throw new ND4JIllegalStateException("native op 'gather' is missing");
        }
        return desc;
    }

    /** No named properties: the only argument (axis 0) travels as an integer argument. */
    @Override
    public Map<String, Object> propertiesForFunction() {
        return Collections.emptyMap();
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> gradOut) {
        SDVariable table = arg(0);
        SDVariable indices = arg(1);
        SDVariable g = gradOut.get(0);
        SDVariable gTable = sameDiff.scatterAdd(sameDiff.zerosLike(table), indices, g);
        return List.of(gTable, sameDiff.zerosLike(indices));
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> dataTypes) {
        return Collections.singletonList(dataTypes.get(0));
    }
}
