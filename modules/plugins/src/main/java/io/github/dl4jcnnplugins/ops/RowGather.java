package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.List;

/**
 * {@code out[i, :] = table[indices[i], :]}: a gather along axis 0 whose gradient is a scatter-add.
 *
 * <p>Runs ND4J's native {@code gather} op, but replaces its SameDiff gradient: in 1.0.0-M2.1
 * {@code Gather.doDiff} assigns instead of adding and reads the wrong positions (see
 * {@code shared/notes/samediff-m2.1.md}, Q2), and {@code gatherNd} has none. Here
 * {@code dL/dTable = scatter_add(zeros_like(table), indices, dL/dOut)}, so the memory of both passes grows with the
 * number of gathered rows and the table size, never with their product (unlike a one-hot matrix product).
 * Indices get no gradient. (Why the op needs a name of its own: {@link NativeAlias}.)
 */
public class RowGather extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_row_gather";

    static {
        register(OP_NAME, new RowGather());
    }

    /** For SameDiff's reflective re-creation only. */
    public RowGather() {
    }

    public RowGather(SameDiff sd, SDVariable table, SDVariable indices) {
        super(sd, table, indices);
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
    protected String nativeName() {
        return "gather";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> gradOut) {
        SDVariable table = arg(0);
        SDVariable indices = arg(1);
        SDVariable g = gradOut.get(0);
        SDVariable gTable = sameDiff.scatterAdd(sameDiff.zerosLike(table), indices, g);
        return List.of(gTable, sameDiff.zerosLike(indices));
    }
}
