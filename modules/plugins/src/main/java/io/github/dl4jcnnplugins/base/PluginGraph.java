package io.github.dl4jcnnplugins.base;

import io.github.dl4jcnnplugins.ops.HostOp;
import org.deeplearning4j.nn.layers.samediff.DL4JSameDiffMemoryMgr;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.autodiff.listeners.profiler.ProfilingListener;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.autodiff.samediff.internal.SessionMemMgr;
import org.nd4j.autodiff.util.SameDiffUtils;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.ExternalErrorsFunction;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.NoOp;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SameDiff graph behind one plug-in layer or vertex, and the forward / backward passes over it.
 * Shared by {@link PluginLayerImpl} and {@link PluginVertexImpl}; this is where the fixes for
 * DL4J 1.0.0-M2.1's SameDiff integration live, once:
 * <ul>
 *   <li>SameDiff doubles the incoming gradient (M2.1): the gradient function is rewired to read it undoubled
 *       ({@link GradScale#undoDoubling}), or, where that does not apply, the gradient is divided by
 *       {@link GradScale#externalErrorsFactor()};</li>
 *   <li>training and inference get separate graphs (built lazily, each for the mode it runs: no run-time
 *       blending of batch and running statistics), and BatchNorm running statistics registered in the
 *       training graph's {@link PluginContext} are updated once per training forward (PyTorch semantics);</li>
 *   <li>the gradient function is created without SameDiff's per-op stdout lines;</li>
 *   <li>the graph is rebuilt when the spatial size of the input changes (not only the minibatch size);</li>
 *   <li>op-level profiles on request ({@link #TRACE_PROPERTY}).</li>
 * </ul>
 */
final class PluginGraph {

    /** Defines the plug-in's output from its inputs and parameters. */
    interface Definition {
        SDVariable define(PluginContext ctx, List<SDVariable> inputs, Map<String, SDVariable> params);
    }

    /**
     * System property: a file-name prefix. When set, every plug-in graph built afterwards records SameDiff's op-level
     * profile (after 2 warm-up runs) to {@code <prefix>-<layer>-<train|infer>-<id>.json}, in Chrome's trace format:
     * one event per op run with its name and duration in microseconds ({@code benchmarks/optrace.py} sums them).
     */
    public static final String TRACE_PROPERTY = "dl4jcnnplugins.trace";

    private final String label;
    private final Definition definition;
    private final List<String> inputNames;
    private final Map<String, long[]> paramShapes;
    private final DataType dataType;

    /** One built graph: SameDiff instance, its context, and the names the passes need. */
    private record Built(SameDiff sd, PluginContext ctx, String outputName, String epsilonName, long[][] builtFor,
                         ForwardReuse reuse) {
    }

    private Built trainGraph;
    private Built inferenceGraph;
    /** What the backward pass multiplies epsilon by: 1 once {@link GradScale#undoDoubling} applied, else 1/factor. */
    private double epsilonScale = 1.0;
    private final Map<String, INDArray> lastExposed = new LinkedHashMap<>();

    PluginGraph(String label, Definition definition, List<String> inputNames, Map<String, long[]> paramShapes,
                DataType dataType) {
        this.label = label;
        this.definition = definition;
        this.inputNames = List.copyOf(inputNames);
        this.paramShapes = new LinkedHashMap<>(paramShapes);
        this.dataType = dataType;
    }

    private static long[][] shapesWithoutBatch(INDArray[] inputs) {
        long[][] s = new long[inputs.length][];
        for (int i = 0; i < inputs.length; i++) {
            s[i] = inputs[i].shape().clone();
            s[i][0] = -1;
        }
        return s;
    }

    private Built ensureBuilt(INDArray[] inputs, Map<String, INDArray> paramTable, boolean training, boolean withGradient) {
        long[][] shapes = shapesWithoutBatch(inputs);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            Built b = training ? trainGraph : inferenceGraph;
            if (b == null || !Arrays.deepEquals(shapes, b.builtFor())) {
                b = build(shapes, paramTable, training);
                if (training) {
                    trainGraph = b;
                } else {
                    inferenceGraph = b;
                }
            }
            if (withGradient && !b.sd().hasGradientFunction()) {
                SameDiff s = b.sd();
                HostOp.differentiate(s, () -> QuietStdout.run(() -> s.createGradFunction(inputNames.toArray(new String[0]))));
                epsilonScale = GradScale.undoDoubling(s, b.epsilonName(), gradientTargets(paramTable))
                        ? 1.0 : 1.0 / GradScale.externalErrorsFactor();
            }
            return b;
        }
    }

    private Built build(long[][] shapes, Map<String, INDArray> paramTable, boolean training) {
        SameDiff s = SameDiff.create();
        HostOp.markPluginGraph(s);   // run by ForwardReuse.Session, which executes host ops
        // Views of the network's flattened parameter array are used directly (as DL4J's own SameDiff layers do).
        s.setArrayHolders(new SingleThreadArrayHolder(), new SingleThreadArrayHolder(), false);
        List<SDVariable> in = new ArrayList<>();
        for (int i = 0; i < shapes.length; i++) {
            in.add(s.placeHolder(inputNames.get(i), dataType, shapes[i]));
        }
        Map<String, SDVariable> params = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : paramShapes.entrySet()) {
            params.put(e.getKey(), s.var(e.getKey(), dataType, e.getValue()));
        }
        PluginContext c = new PluginContext(s, dataType, Arrays.asList(shapes), training);
        SDVariable out = definition.define(c, in, params);
        if (out == null) {
            throw new IllegalStateException("plug-in graph definition returned null");
        }
        for (Map.Entry<String, INDArray> e : paramTable.entrySet()) {
            s.associateArrayWithVariable(e.getValue(), s.getVariable(e.getKey()));
        }
        String epsilon = null;
        if (training) {
            ExternalErrorsFunction fn = SameDiffUtils.externalErrors(s, null, out);
            // Say which variable carries the loss: SameDiff's guess fails once exposed intermediates are also leaves.
            // (setLossVariables refuses the external-errors output, a CONSTANT; the training config's list is not checked.)
            s.setTrainingConfig(TrainingConfig.builder().skipBuilderValidation(true).updater(new NoOp())
                    .minimize(fn.outputVariable().name()).build());
            epsilon = fn.getGradPlaceholderName();
        }
        String trace = System.getProperty(TRACE_PROPERTY);
        if (trace != null && !trace.isBlank()) {
            // SameDiff's op-level profiler: one Chrome-trace JSON per graph (name, duration in microseconds per op run)
            File file = new File(trace + "-" + label + "-" + (training ? "train" : "infer")
                    + "-" + System.identityHashCode(s) + ".json");
            s.setListeners(ProfilingListener.builder(file).recordAll().warmup(2).build());
        }
        return new Built(s, c, out.name(), epsilon, shapes, training ? new ForwardReuse() : null);
    }

    /** The variables whose gradients the backward pass returns: the inputs, then the parameters. */
    private List<String> gradientTargets(Map<String, INDArray> paramTable) {
        List<String> targets = new ArrayList<>(inputNames);
        targets.addAll(paramTable.keySet());
        return targets;
    }

    private Map<String, INDArray> placeholders(INDArray[] inputs) {
        Map<String, INDArray> ph = new HashMap<>();
        for (int i = 0; i < inputs.length; i++) {
            ph.put(inputNames.get(i), inputs[i]);
        }
        return ph;
    }

    /**
     * Gives {@code target} a session for this thread (one of {@code reuse}'s for a training graph, of an unused record
     * otherwise: see {@link ForwardReuse.Session}) whose memory comes from the DL4J workspaces of {@code working} and
     * {@code output}.
     */
    private static InferenceSession useWorkspaces(SameDiff target, LayerWorkspaceMgr mgr, ArrayType working,
                                                  ArrayType output, ForwardReuse reuse) {
        Map<Long, InferenceSession> sessions = target.getSessions();
        long tid = Thread.currentThread().getId();
        InferenceSession is = sessions.get(tid);
        if (!(is instanceof ForwardReuse.Session)) {
            // the inference graph: a session of a record that is never started (reshapes as views, nothing kept)
            is = (reuse == null ? new ForwardReuse() : reuse).session(target);
            sessions.put(tid, is);
        }
        SessionMemMgr mmgr = new DL4JSameDiffMemoryMgr(mgr.getWorkspaceName(working), mgr.getWorkspaceName(output),
                mgr.getConfiguration(working), mgr.getConfiguration(output));
        is.setMmgr(mmgr);
        return is;
    }

    private static boolean sharesData(INDArray a, INDArray eps, INDArray epsilon, INDArray[] inputs) {
        return sameMemory(a, eps) || sameMemory(a, epsilon) || sharesInput(a, inputs);
    }

    /** Whether {@code a} is one of {@code inputs} or a view of one (a reshape runs as a view: ForwardReuse). */
    private static boolean sharesInput(INDArray a, INDArray[] inputs) {
        for (INDArray in : inputs) {
            if (sameMemory(a, in)) {
                return true;
            }
        }
        return false;
    }

    /** Whether the buffers of {@code a} and {@code b} overlap (a view may have a buffer object of its own). */
    private static boolean sameMemory(INDArray a, INDArray b) {
        if (a.data() == b.data()) {
            return true;
        }
        long a0 = a.data().address();
        long b0 = b.data().address();
        return a0 < b0 + b.data().length() * b.data().getElementSize()
                && b0 < a0 + a.data().length() * a.data().getElementSize();
    }

    /**
     * A copy of {@code arr} in the DL4J workspace of {@code type}, or detached when that type is scoped out (where
     * {@code mgr.dup} would return a detached array itself).
     */
    private static INDArray copy(INDArray arr, LayerWorkspaceMgr mgr, ArrayType type) {
        if (mgr.isScopedOut(type)) {
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                return arr.dup();
            }
        }
        return mgr.dup(type, arr);
    }

    /** Moves {@code arr} into the DL4J workspace of {@code type} unless it is already there. */
    private static INDArray intoWorkspace(INDArray arr, LayerWorkspaceMgr mgr, ArrayType type) {
        if (mgr.isScopedOut(type)) {
            return arr.isAttached() ? arr.detach() : arr;
        }
        String ws = mgr.getWorkspaceName(type);
        if (!arr.isAttached() || arr.data().getParentWorkspace() == null
                || !ws.equals(arr.data().getParentWorkspace().getId())) {
            return mgr.dup(type, arr);
        }
        return arr;
    }

    /**
     * Forward pass. In training mode, also applies every running-statistic update registered by the
     * definition to {@code paramTable} (in place).
     */
    INDArray forward(INDArray[] inputs, boolean training, Map<String, INDArray> paramTable, LayerWorkspaceMgr mgr) {
        Built b = ensureBuilt(inputs, paramTable, training, false);
        SameDiff sd = b.sd();
        PluginContext ctx = b.ctx();
        ForwardReuse reuse = b.reuse();   // null for the inference graph
        if (reuse != null && ForwardReuse.enabled()) {
            // Outputs of the costly ops copied to the activation workspace (open until the backward pass) for it,
            // or (host ops) computed there in the first place.
            reuse.start(inputs, (dt, shape) -> mgr.isScopedOut(ArrayType.ACTIVATIONS)
                    ? Nd4j.createUninitializedDetached(dt, shape)
                    : mgr.createUninitialized(ArrayType.ACTIVATIONS, dt, shape, 'c'));
        } else if (reuse != null) {
            reuse.clear();
        }
        useWorkspaces(sd, mgr, ArrayType.FF_WORKING_MEM, ArrayType.ACTIVATIONS, reuse);
        List<String> wanted = new ArrayList<>();
        wanted.add(b.outputName());
        List<PluginContext.RunningStatUpdate> updates = ctx.runningStatUpdates();
        for (PluginContext.RunningStatUpdate u : updates) {
            wanted.add(u.batchVariable());
        }
        wanted.addAll(ctx.exposed().values());
        Map<String, INDArray> out = sd.output(placeholders(inputs), wanted);
        lastExposed.clear();
        for (Map.Entry<String, String> e : ctx.exposed().entrySet()) {
            lastExposed.put(e.getKey(), out.get(e.getValue()).detach());   // a copy outside DL4J's workspaces
        }
        for (PluginContext.RunningStatUpdate u : updates) {
            INDArray running = paramTable.get(u.paramKey());
            INDArray all = out.get(u.batchVariable()).reshape(-1);
            INDArray batch = (u.offset() == 0 && all.length() == running.length() ? all
                    : all.get(NDArrayIndex.interval(u.offset(), u.offset() + running.length()))).reshape(running.shape());
            double m = u.momentum();
            if (u.besselPerSample() > 0) {
                double n = (double) inputs[0].size(0) * u.besselPerSample();
                m *= n > 1 ? n / (n - 1) : 1.0;
            }
            running.muli(1.0 - u.momentum()).addi(batch.mul(m));
        }
        INDArray y = out.get(b.outputName());
        // a copy when the graph passed an input through (as is or reshaped): DL4J may change activations in place
        INDArray result = sharesInput(y, inputs) ? copy(y, mgr, ArrayType.ACTIVATIONS)
                : intoWorkspace(y, mgr, ArrayType.ACTIVATIONS);
        sd.clearPlaceholders(true);
        sd.clearOpInputs();
        return result;
    }

    /** The intermediate results the definition exposed, from the last forward pass (empty if none). */
    Map<String, INDArray> lastExposed() {
        return java.util.Collections.unmodifiableMap(lastExposed);
    }

    /**
     * Backward pass for {@code dL/dOutput = epsilon} (always in training mode). Writes the parameter gradients
     * into {@code gradTable} and returns them with dL/dInput for every input; both corrected for the
     * external-errors factor.
     */
    Pair<Map<String, INDArray>, INDArray[]> backward(INDArray[] inputs, INDArray epsilon, Map<String, INDArray> paramTable,
                                                     Map<String, INDArray> gradTable, LayerWorkspaceMgr mgr) {
        Built b = ensureBuilt(inputs, paramTable, true, true);
        SameDiff sd = b.sd();
        ForwardReuse.Session session = (ForwardReuse.Session) useWorkspaces(sd.getFunction("grad"), mgr,
                ArrayType.BP_WORKING_MEM, ArrayType.ACTIVATION_GRAD, b.reuse());
        session.reuse = ForwardReuse.enabled() && b.reuse().use(inputs);
        if (!session.reuse) {
            b.reuse().clear();   // nothing usable: and nothing of the gradient function is recorded either
        }
        Map<String, INDArray> ph = placeholders(inputs);
        // SameDiff doubles the gradient that enters through the external-errors function. Normally the gradient
        // function was rewired not to (GradScale.undoDoubling); otherwise halve epsilon on the way in (exact for a
        // power of two, and one pass over epsilon instead of one over every gradient that comes out).
        INDArray eps = epsilonScale == 1.0 ? epsilon : epsilon.mul(epsilonScale);
        ph.put(b.epsilonName(), eps);
        Map<String, INDArray> g = sd.calculateGradients(ph, gradientTargets(paramTable));

        Map<String, INDArray> paramGrads = new LinkedHashMap<>();
        for (String key : paramTable.keySet()) {
            INDArray target = gradTable.get(key);
            INDArray sdGrad = g.get(key);
            if (sdGrad == null) {
                target.assign(0);
            } else {
                target.assign(sdGrad);
            }
            paramGrads.put(key, target);
        }
        INDArray[] inputGrads = new INDArray[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            INDArray gi = g.get(inputNames.get(i));
            if (gi == null) {
                gi = Nd4j.zeros(inputs[i].dataType(), inputs[i].shape());
            } else if (!Arrays.equals(gi.shape(), inputs[i].shape())) {
                throw new IllegalStateException(label + ": the gradient for input '" + inputNames.get(i) + "' has shape "
                        + Arrays.toString(gi.shape()) + ", expected the input's " + Arrays.toString(inputs[i].shape())
                        + " (a plug-in graph definition error)");
            }
            // SameDiff's result is already a fresh array in the activation-gradient workspace (or detached), except when
            // the graph passes epsilon or an input straight through: copy only then.
            inputGrads[i] = sharesData(gi, eps, epsilon, inputs) ? copy(gi, mgr, ArrayType.ACTIVATION_GRAD)
                    : intoWorkspace(gi, mgr, ArrayType.ACTIVATION_GRAD);
        }
        session.reuse = false;
        b.reuse().clear();
        sd.clearPlaceholders(true);
        sd.clearOpInputs();
        return new Pair<>(paramGrads, inputGrads);
    }
}
