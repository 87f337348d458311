package io.github.dl4jcnnplugins.base;

import io.github.dl4jcnnplugins.ops.BilinearSampling;
import io.github.dl4jcnnplugins.ops.BatchNormRelu;
import io.github.dl4jcnnplugins.ops.DirectConv;
import io.github.dl4jcnnplugins.ops.HostOp;
import io.github.dl4jcnnplugins.ops.MeanMax;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.config.ExecutionResult;
import org.nd4j.autodiff.samediff.config.SDValue;
import org.nd4j.autodiff.samediff.internal.AbstractSession.VarId;
import org.nd4j.autodiff.samediff.internal.FrameIter;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.shape.Reshape;
import org.nd4j.linalg.api.shape.Shape;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiFunction;

/**
 * Keeps the results of a training forward pass's costly ops (convolutions, matrix products, gathers, large
 * reductions) so that the backward pass does not compute them again.
 *
 * <p>{@code SameDiff.calculateGradients} runs the gradient function, which holds a copy of every forward op: without
 * this, every training step computes the plug-in's forward pass twice (once for DL4J's forward, once inside the
 * backward). Here the forward graph runs in a {@link Session} that copies the outputs of the costly ops
 * (by op name: the gradient function's copies have the same names) into DL4J's activation workspace, which stays open
 * until the backward pass is done; the gradient function then runs in a {@link Session} with {@code reuse} set, which returns those
 * outputs instead of executing the ops. The cheap element-wise ops run again: keeping every intermediate instead (all
 * forward working memory in the activation workspace) was measured slower for the deformable convolution (fwd+bwd
 * 850-974 -> 1217-1446 ms, peak memory 67 -> 777 MB, generic build) and multiplied the peak memory of the others
 * (SE 25 -> 172 MB). The record is used only when it is still valid: the backward pass sees the same input arrays,
 * and every recorded array is detached or in a workspace that has not been reset since. Otherwise the ops simply
 * run again (the behaviour without this class).
 */
final class ForwardReuse {
    /** System property: {@code false} turns the reuse off (the forward ops then run again in every backward pass). */
    static final String PROPERTY = "dl4jcnnplugins.forwardReuse";
    private static volatile boolean enabled = !"false".equalsIgnoreCase(System.getProperty(PROPERTY));

    /** Whether training forward passes are recorded and reused (default true; system property {@value #PROPERTY}). */
    static boolean enabled() {
        return enabled;
    }

    /** For tests: turns the reuse on or off from the next forward pass on. */
    static void enabled(boolean on) {
        enabled = on;
    }

    /** Backward passes that used a record / that ran the forward ops again (for tests and diagnostics). */
    static final AtomicLong REUSED = new AtomicLong();
    static final AtomicLong RECOMPUTED = new AtomicLong();

    /** Native op names whose outputs are recorded: the ops that cost more to run again than to copy. */
    private static final Set<String> COSTLY = Set.of("conv2d", "depthwise_conv2d", "deconv2d", "conv1d", "conv3dnew",
            "matmul", "mmul", "tensormmul", "batched_gemm", "dl4jcnnplugins_row_gather", "dl4jcnnplugins_matmul",
            BilinearSampling.Forward.OP_NAME, DirectConv.Forward.OP_NAME,
            MeanMax.Forward.OP_NAME, BatchNormRelu.Forward.OP_NAME);

    /**
     * Other ops are recorded when their outputs are at most 1/{@value} the size of their inputs (reductions: a global
     * mean, BatchNorm's batch statistics, a dot product over the pixels), so that copying them costs little next to
     * reading the inputs again (SE ran its 25 MB spatial mean a second time in every backward pass).
     */
    private static final int REDUCTION_RATIO = 8;
    /** ... and their inputs have at least this many elements (below it, running an op again costs next to nothing). */
    private static final long REDUCTION_MIN_INPUT = 1 << 16;

    private final Map<String, INDArray[]> outputs = new HashMap<>();
    private INDArray[] inputs;
    private BiFunction<DataType, long[], INDArray> allocate;

    /**
     * Forgets the previous record and starts a new one for a forward pass over {@code inputs}; {@code allocator}
     * allocates an uninitialised row-major array where it outlives the forward pass (DL4J's activation workspace):
     * a recorded host op writes its outputs there directly, other recorded ops' outputs are copied there.
     */
    void start(INDArray[] forwardInputs, BiFunction<DataType, long[], INDArray> allocator) {
        outputs.clear();
        inputs = forwardInputs.clone();
        allocate = allocator;
    }

    /** A copy of {@code a} where the record keeps it. */
    private INDArray keep(INDArray a) {
        return allocate.apply(a.dataType(), a.shape()).assign(a);
    }

    /** Forgets the record. */
    void clear() {
        outputs.clear();
        inputs = null;
        allocate = null;
    }

    /** Whether the record can stand in for a forward pass over {@code backwardInputs}. */
    boolean validFor(INDArray[] backwardInputs) {
        if (inputs == null || outputs.isEmpty() || backwardInputs.length != inputs.length) {
            return false;
        }
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] != backwardInputs[i]) {
                return false;
            }
        }
        for (INDArray[] arrays : outputs.values()) {
            for (INDArray a : arrays) {
                if (a != null && !alive(a)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** {@link #validFor}, counted. */
    boolean use(INDArray[] backwardInputs) {
        boolean ok = validFor(backwardInputs);
        (ok ? REUSED : RECOMPUTED).incrementAndGet();
        return ok;
    }

    private static boolean alive(INDArray a) {
        if (a.wasClosed()) {
            return false;
        }
        if (!a.isAttached()) {
            return true;
        }
        MemoryWorkspace ws = a.data().getParentWorkspace();
        return ws != null && ws.isScopeActive() && a.data().getGenerationId() == ws.getGenerationId();
    }

    /** Whether an op with these inputs and outputs is a reduction worth recording (see {@link #REDUCTION_RATIO}). */
    private static boolean reduces(OpContext ctx, INDArray[] out) {
        List<INDArray> in = ctx == null ? null : ctx.getInputArrays();
        if (in == null || in.isEmpty()) {
            return false;
        }
        long inLength = totalLength(in);
        return inLength >= REDUCTION_MIN_INPUT && totalLength(Arrays.asList(out)) * REDUCTION_RATIO <= inLength;
    }

    private static long totalLength(List<INDArray> arrays) {
        long n = 0;
        for (INDArray a : arrays) {
            n += a == null ? 0 : a.length();
        }
        return n;
    }

    /**
     * A reshape's result as a view of its input, or null when it cannot be one (not a row-major reshape of a
     * row-major array with default strides). libnd4j's {@code reshape} kernel copies every element; a view costs
     * nothing. Safe because a session here allocates through DL4J's memory manager, whose {@code release} does nothing
     * (arrays live until their DL4J workspace closes), so an input never returns to a cache while a view of it is in
     * use; and {@link PluginGraph} copies a result that shares memory with an input before handing it to DL4J.
     */
    static INDArray reshapeView(Reshape op, OpContext ctx) {
        long[] args = op.iArgs();
        if (ctx == null || args.length == 0 || args[0] != Reshape.C_ORDER) {
            return null;
        }
        List<INDArray> in = ctx.getInputArrays();
        List<INDArray> out = ctx.getOutputArrays();
        if (in == null || in.isEmpty() || out == null || out.isEmpty()) {
            return null;
        }
        INDArray x = in.get(0);
        INDArray y = out.get(0);
        if (x == null || y == null || x.isEmpty() || x.rank() == 0 || y.rank() == 0 || x.length() != y.length()
                || x.dataType() != y.dataType() || x.ordering() != 'c' || !Shape.hasDefaultStridesForShape(x)) {
            return null;
        }
        try {
            return x.reshape('c', true, y.shape());
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** A session for {@code sd} that records (forward graph) or reuses (gradient function) this record's outputs. */
    Session session(SameDiff sd) {
        return new Session(sd);
    }

    /**
     * Session for every plug-in graph (training forward, gradient function, inference). Reshapes run as views
     * ({@link #reshapeView}); {@link HostOp}s run their Java kernels. While a record is being made ({@link #start} to
     * {@link #clear}), the costly ops it runs are recorded; when {@link #reuse} is set, ops found in the record return
     * the recorded outputs instead of running. (The inference graph's session belongs to a record that is never started.)
     */
    final class Session extends InferenceSession {
        boolean reuse;

        Session(SameDiff sd) {
            super(sd);
        }

        @Override
        public ExecutionResult doExec(DifferentialFunction op, OpContext opContext, FrameIter outputFrameIter,
                                      Set<VarId> opInputs, Set<VarId> allIterInputs, Set<String> constAndPhInputs,
                                      Map<String, SDValue> otherPlaceHolders) {
            List<String> names = Arrays.asList(op.outputVariablesNames());
            INDArray[] recorded = reuse ? outputs.get(op.getOwnName()) : null;
            if (recorded != null) {
                return ExecutionResult.createFrom(names, recorded);
            }
            INDArray view = op instanceof Reshape ? reshapeView((Reshape) op, opContext) : null;
            if (view != null) {
                return ExecutionResult.createFrom(names, new INDArray[]{view});
            }
            ExecutionResult r;
            if (op instanceof HostOp && opContext != null) {
                // a kernel in Java: its outputs were allocated in the op context by getAndParameterizeOp
                List<INDArray> outs = opContext.getOutputArrays();
                if (!reuse && allocate != null && COSTLY.contains(op.opName())) {
                    // recorded: computed straight into arrays that outlive the forward pass (no copy afterwards)
                    INDArray[] kept = new INDArray[outs.size()];
                    for (int i = 0; i < kept.length; i++) {
                        kept[i] = allocate.apply(outs.get(i).dataType(), outs.get(i).shape());
                    }
                    ((HostOp) op).compute(opContext.getInputArrays(), Arrays.asList(kept));
                    outputs.put(op.getOwnName(), kept);
                    return ExecutionResult.createFrom(names, kept);
                }
                ((HostOp) op).compute(opContext.getInputArrays(), outs);
                r = ExecutionResult.createFrom(names, outs.toArray(new INDArray[0]));
            } else {
                r = super.doExec(op, opContext, outputFrameIter, opInputs, allIterInputs, constAndPhInputs,
                        otherPlaceHolders);
            }
            if (!reuse && allocate != null && r.getOutputs() != null) {
                INDArray[] out = r.outputsToArray(names);
                if (!COSTLY.contains(op.opName()) && !reduces(opContext, out)) {
                    return r;
                }
                INDArray[] kept = new INDArray[out.length];
                for (int i = 0; i < out.length; i++) {
                    kept[i] = out[i] == null ? null : keep(out[i]);
                }
                outputs.put(op.getOwnName(), kept);
            }
            return r;
        }
    }
}
