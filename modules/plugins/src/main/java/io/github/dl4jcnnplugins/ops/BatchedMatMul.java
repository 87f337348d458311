package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.exception.ND4JIllegalStateException;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * Batched matrix product {@code c[i] = op(a[i]) op(b[i])} ({@code a}, {@code b}, {@code c} rank 3, same batch size)
 * run as one rank-2 {@code matmul} per batch item on views of the batch: {@link MatMul#batch}.
 *
 * <p>Why: libnd4j hands rank-2 float products to oneDNN, which runs on the OpenMP threads that ND4J's other ops use,
 * but batched (rank-3) ones to OpenBLAS, whose own threads then compete for the cores with the OpenMP threads still
 * spinning after the previous op. Measured ({@code [4, 784, 128]^T x [4, 128, 784]}, float, 2 threads,
 * {@code -onednn}, right after an element-wise addition as in a graph): batched 12.9-15.4 ms, four rank-2 products
 * 5.8-6.7 ms; alone both 6-9 ms. On builds without oneDNN every product goes to OpenBLAS and {@link MatMul#of} is used.
 * The gradient is four more such products ({@link MatMul#gradients}).
 */
public final class BatchedMatMul extends HostOp {
    public static final String OP_NAME = "dl4jcnnplugins_batched_matmul";

    static {
        register(OP_NAME, new BatchedMatMul());
    }

    /** For SameDiff's reflective re-creation only. */
    public BatchedMatMul() {
    }

    BatchedMatMul(SameDiff sd, SDVariable a, SDVariable b, boolean transposeA, boolean transposeB) {
        super(sd, a, b);
        addIArgument(transposeA ? 1 : 0, transposeB ? 1 : 0);
    }

    @Override
    public int getNumOutputs() {
        return 1;
    }

    @Override
    protected List<long[]> outputShapes(List<long[]> in) {
        long[] a = in.get(0);
        long[] b = in.get(1);
        long[] t = iArgs();
        boolean ta = MatMul.flag(t, 0);
        boolean tb = MatMul.flag(t, 1);
        long inner = ta ? a[1] : a[2];
        if (a.length != 3 || b.length != 3 || a[0] != b[0] || inner != (tb ? b[2] : b[1])) {
            throw new ND4JIllegalStateException("batched matmul: shapes " + Arrays.toString(a) + " and "
                    + Arrays.toString(b) + " (transposed " + ta + ", " + tb + ") do not multiply");
        }
        return List.of(new long[]{a[0], ta ? a[2] : a[1], tb ? b[1] : b[2]});
    }

    @Override
    public void compute(List<INDArray> in, List<INDArray> out) {
        // oneDNN takes row-major operands only (a transposed view is expressed by the flags, not by strides)
        INDArray a = rowMajorCopy(in.get(0));
        INDArray b = rowMajorCopy(in.get(1));
        INDArray c = out.get(0);
        long[] t = iArgs();
        int ta = MatMul.flag(t, 0) ? 1 : 0;
        int tb = MatMul.flag(t, 1) ? 1 : 0;
        for (long i = 0; i < a.size(0); i++) {
            Nd4j.exec(DynamicCustomOp.builder("matmul").addInputs(a.slice(i), b.slice(i)).addOutputs(c.slice(i))
                    .addIntegerArguments(ta, tb).build());
        }
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        long[] t = iArgs();
        return MatMul.gradients(sameDiff, MatMul::batch, grads.get(0), arg(0), arg(1), MatMul.flag(t, 0),
                MatMul.flag(t, 1));
    }
}
