package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Arrays;
import java.util.List;

/**
 * Matrix product {@code op(a) op(b)} (rank 2, or rank 3 with a batch axis), {@code op} = transpose where asked, with a
 * gradient made of two more matrix products.
 *
 * <p>SameDiff differentiates its {@code mmul} through libnd4j's {@code matmul_bp}; the oneDNN builds run the forward
 * {@code matmul} kernel through oneDNN but not {@code matmul_bp}. Measured for the Non-local block's products
 * ({@code [4, 784, 128] x [4, 128, 784]} and back, float, 2 threads, {@code -onednn}): forward {@code matmul} 7.4-8.6
 * ms each (74-86 GFLOP/s), {@code matmul_bp} 49 ms for the two products' four gradient products (51 GFLOP/s).
 * Here {@code dL/da} and {@code dL/db} are {@code matmul}s with transpose flags (no transposed copies):
 * <pre>
 *   c = a b      : da = g b^T,     db = a^T g
 *   c = a^T b    : da = b g^T,     db = a g
 *   c = a b^T    : da = g b,       db = g^T a
 *   c = a^T b^T  : da = b^T g^T,   db = g^T a^T
 * </pre>
 */
public class MatMul extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_matmul";

    static {
        register(OP_NAME, new MatMul());
    }

    /** For SameDiff's reflective re-creation only. */
    public MatMul() {
    }

    private MatMul(SameDiff sd, SDVariable a, SDVariable b, boolean transposeA, boolean transposeB) {
        super(sd, a, b);
        addIArgument(transposeA ? 1 : 0, transposeB ? 1 : 0);
    }

    /** {@code a b}. */
    public static SDVariable of(SameDiff sd, SDVariable a, SDVariable b) {
        return of(sd, a, b, false, false);
    }

    /** {@code op(a) op(b)}, {@code op} transposing the last two axes where asked. */
    public static SDVariable of(SameDiff sd, SDVariable a, SDVariable b, boolean transposeA, boolean transposeB) {
        return new MatMul(sd, a, b, transposeA, transposeB).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "matmul";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        SDVariable g = grads.get(0);
        SDVariable a = arg(0);
        SDVariable b = arg(1);
        long[] t = iArgs();
        boolean ta = t.length > 0 && t[0] != 0;
        boolean tb = t.length > 1 && t[1] != 0;
        SDVariable da;
        SDVariable db;
        if (!ta && !tb) {
            da = of(sameDiff, g, b, false, true);
            db = of(sameDiff, a, g, true, false);
        } else if (ta && !tb) {
            da = of(sameDiff, b, g, false, true);
            db = of(sameDiff, a, g, false, false);
        } else if (!ta) {
            da = of(sameDiff, g, b, false, false);
            db = of(sameDiff, g, a, true, false);
        } else {
            da = of(sameDiff, b, g, true, true);
            db = of(sameDiff, g, a, true, true);
        }
        return Arrays.asList(da, db);
    }
}
