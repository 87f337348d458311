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

    /** How {@link #batch} multiplies rank-3 operands. */
    public enum Batched {
        /** {@link #PER_ITEM} where host ops are usable and the loaded ND4J build has oneDNN, else {@link #NATIVE}. */
        AUTO,
        /** One rank-2 {@code matmul} per batch item ({@link BatchedMatMul}, a host op; {@link #NATIVE} where none). */
        PER_ITEM,
        /** libnd4j's batched {@code matmul} ({@link #of}). */
        NATIVE
    }

    /** System property that sets the initial {@link #batchedStrategy()}: auto, per_item or native. */
    public static final String BATCHED_PROPERTY = "dl4jcnnplugins.batchedMatMul";

    private static final EnumProperty.Setting<Batched> BATCHED = new EnumProperty.Setting<>(BATCHED_PROPERTY,
            Batched.class, Batched.AUTO, "batched matmul strategy");

    /** The current strategy for {@link #batch}; read when a plug-in's graph is built. */
    public static Batched batchedStrategy() {
        return BATCHED.get();
    }

    /** Sets how {@link #batch} multiplies from now on (graphs already built keep theirs). */
    public static void batchedStrategy(Batched strategy) {
        BATCHED.set(strategy);
    }

    /**
     * {@code op(a[i]) op(b[i])} for every {@code i} of the batch axis: {@code a} and {@code b} both rank 3 with the same
     * batch size, computed as {@link #batchedStrategy()} says.
     */
    public static SDVariable batch(SameDiff sd, SDVariable a, SDVariable b, boolean transposeA, boolean transposeB) {
        Batched s = BATCHED.get();
        boolean perItem = s != Batched.NATIVE && HostOp.usableIn(sd, a.dataType())
                && (s == Batched.PER_ITEM || Conv.oneDnnActive());
        if (perItem) {
            return new BatchedMatMul(sd, a, b, transposeA, transposeB).outputVariable();
        }
        return of(sd, a, b, transposeA, transposeB);
    }

    /** How a gradient is multiplied: {@link #of} or {@link #batch}. */
    @FunctionalInterface
    interface Product {
        SDVariable apply(SameDiff sd, SDVariable a, SDVariable b, boolean transposeA, boolean transposeB);
    }

    /** Flag {@code k} of {@code op}'s integer arguments (absent = false). */
    static boolean flag(long[] iArgs, int k) {
        return iArgs.length > k && iArgs[k] != 0;
    }

    /** {@code [dL/da, dL/db]} for {@code c = op(a) op(b)} and {@code g = dL/dc} (the table in the class comment). */
    static List<SDVariable> gradients(SameDiff sd, Product mm, SDVariable g, SDVariable a, SDVariable b, boolean ta,
                                      boolean tb) {
        SDVariable da;
        SDVariable db;
        if (!ta && !tb) {
            da = mm.apply(sd, g, b, false, true);
            db = mm.apply(sd, a, g, true, false);
        } else if (ta && !tb) {
            da = mm.apply(sd, b, g, false, true);
            db = mm.apply(sd, a, g, false, false);
        } else if (!ta) {
            da = mm.apply(sd, g, b, false, false);
            db = mm.apply(sd, g, a, true, false);
        } else {
            da = mm.apply(sd, b, g, true, true);
            db = mm.apply(sd, g, a, true, true);
        }
        return Arrays.asList(da, db);
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        long[] t = iArgs();
        return gradients(sameDiff, MatMul::of, grads.get(0), arg(0), arg(1), flag(t, 0), flag(t, 1));
    }
}
