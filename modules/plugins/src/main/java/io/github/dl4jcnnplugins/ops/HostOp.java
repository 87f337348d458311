package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.imports.converters.ImportClassMapping;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.exception.ND4JIllegalStateException;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.ref.WeakReference;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * A SameDiff op whose kernel is Java code working on the host memory of ND4J's CPU backend: for work that libnd4j
 * has no fast kernel for (bilinear sampling with its scatter-shaped gradient: libnd4j's {@code scatter_add} pays
 * 1.3-1.9 us per row, its {@code bincount} 420 ns per element).
 *
 * <p>Only the plug-in runtime's own session executes these ops ({@code ForwardReuse.Session} calls
 * {@link #compute}); stock SameDiff sessions do not know them. So a graph gets them only when {@link #usableIn} says
 * so: the graph is a plug-in graph ({@link #markPluginGraph}), the backend is ND4J's CPU backend (the kernels read
 * and write host memory; on CUDA the composite form of the same computation is used) and
 * {@value #PROPERTY} is not {@code false}. Code that builds such an op keeps a composite form for the other cases.
 *
 * <p>Subclasses have a public no-argument constructor and call {@link #register} for their name (which is then their
 * {@link #opName()}): SameDiff copies every op through its FlatBuffers form when it builds the gradient function and
 * re-creates it by name. Integer arguments survive that copy; named properties do not exist here.
 */
public abstract class HostOp extends DynamicCustomOp {
    /** System property: {@code false} builds the composite forms instead of host ops. */
    public static final String PROPERTY = "dl4jcnnplugins.hostOps";

    /** Plug-in graphs, by identity (SameDiff's hashCode changes as a graph grows); pruned as they are collected. */
    private static final List<WeakReference<SameDiff>> PLUGIN_GRAPHS = new ArrayList<>();
    private static volatile Boolean cpuBackend;
    private static volatile ForkJoinPool pool;

    /** For SameDiff's reflective re-creation only. */
    protected HostOp() {
    }

    protected HostOp(SameDiff sd, SDVariable... args) {
        super(null, sd, args, false);
    }

    /** Op names by class, as {@link #register}ed: {@link #opName()} reads them. */
    private static final Map<Class<?>, String> NAMES = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * Makes SameDiff re-create {@code prototype}'s class for ops named {@code name}, and makes {@code name} the
     * {@link #opName()} of that class.
     */
    protected static void register(String name, HostOp prototype) {
        NAMES.put(prototype.getClass(), name);
        ImportClassMapping.getOpNameMapping().putIfAbsent(name, prototype);
    }

    /** The name this class was {@link #register}ed under (every subclass registers in its static initialiser). */
    @Override
    public String opName() {
        return NAMES.get(getClass());
    }

    /** Set while the gradient function of a plug-in graph is being built (see {@link #differentiate}). */
    private static final ThreadLocal<Boolean> DIFFERENTIATING = ThreadLocal.withInitial(() -> false);

    /**
     * Runs {@code createGradient} (SameDiff's {@code createGradFunction} on {@code sd}) so that ops' {@code doDiff}
     * may build host ops when {@code sd} is a plug-in graph: SameDiff builds the gradient function in a new instance
     * with no link to {@code sd}, so {@link #usableIn} cannot tell from the instance alone. The gradient function is
     * marked as a plug-in graph afterwards (the plug-in runtime's session runs it too).
     */
    public static void differentiate(SameDiff sd, Runnable createGradient) {
        boolean plugin = isPluginGraph(sd);
        boolean before = DIFFERENTIATING.get();
        DIFFERENTIATING.set(plugin);
        try {
            createGradient.run();
        } finally {
            DIFFERENTIATING.set(before);
        }
        SameDiff grad = sd.getFunction("grad");
        if (plugin && grad != null) {
            markPluginGraph(grad);
        }
    }

    /** Records that {@code sd} is run by the plug-in runtime's session (which executes host ops). */
    public static void markPluginGraph(SameDiff sd) {
        synchronized (PLUGIN_GRAPHS) {
            PLUGIN_GRAPHS.removeIf(r -> r.get() == null);
            PLUGIN_GRAPHS.add(new WeakReference<>(sd));
        }
    }

    private static boolean isPluginGraph(SameDiff sd) {
        synchronized (PLUGIN_GRAPHS) {
            for (WeakReference<SameDiff> r : PLUGIN_GRAPHS) {
                if (r.get() == sd) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Whether ops built into {@code sd} may be host ops (see the class comment). */
    public static boolean usableIn(SameDiff sd) {
        return !"false".equalsIgnoreCase(System.getProperty(PROPERTY)) && (DIFFERENTIATING.get() || isPluginGraph(sd))
                && cpuBackend();
    }

    /** {@link #usableIn(SameDiff)} for an op on data of type {@code dt} (host ops read and write float or double). */
    public static boolean usableIn(SameDiff sd, DataType dt) {
        return (dt == DataType.FLOAT || dt == DataType.DOUBLE) && usableIn(sd);
    }

    private static boolean cpuBackend() {
        Boolean cpu = cpuBackend;
        if (cpu == null) {
            cpu = Nd4j.getBackend().getClass().getName().endsWith(".CpuBackend");
            cpuBackend = cpu;
        }
        return cpu;
    }

    /** The output shapes for these input shapes. */
    protected abstract List<long[]> outputShapes(List<long[]> inputShapes);

    /** Computes the outputs (allocated, in row-major order, contents undefined) from the inputs. */
    public abstract void compute(List<INDArray> inputs, List<INDArray> outputs);

    @Override
    public abstract int getNumOutputs();

    @Override
    public List<LongShapeDescriptor> calculateOutputShape(OpContext oc) {
        List<INDArray> in = oc != null && oc.getInputArrays() != null ? oc.getInputArrays() : inputArguments();
        List<long[]> shapes = new ArrayList<>();
        for (INDArray a : in) {
            shapes.add(a.shape());
        }
        DataType dt = in.get(0).dataType();
        List<LongShapeDescriptor> out = new ArrayList<>();
        for (long[] s : outputShapes(shapes)) {
            out.add(LongShapeDescriptor.fromShape(s, dt));
        }
        return out;
    }

    @Override
    public List<LongShapeDescriptor> calculateOutputShape() {
        return calculateOutputShape(null);
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> dataTypes) {
        return Collections.nCopies(getNumOutputs(), dataTypes.get(0));
    }

    /** Not a native op: no native descriptor. */
    @Override
    public long opHash() {
        return 0;
    }

    /** No named properties: arguments travel as integer arguments. */
    @Override
    public Map<String, Object> propertiesForFunction() {
        return Collections.emptyMap();
    }

    // ------------------------------------------------------------------ host memory

    /**
     * Bulk access to a row-major array's host memory by flat index (float or double; int indices: at most 2^31 - 1
     * elements). Bulk because element-wise access to a direct NIO buffer costs ~4 ns per element here (JDK 17's
     * memory-session checks stop the JIT from vectorising), a bulk copy to or from a Java array next to nothing.
     * A view with other strides is read through a row-major copy (inputs only).
     */
    public abstract static class Host {
        /** Copies elements {@code [from, from + len)} to {@code dst[off...]}. */
        public abstract void get(int from, double[] dst, int off, int len);

        /** Copies {@code src[off, off + len)} to elements {@code [to, to + len)}. */
        public abstract void set(int to, double[] src, int off, int len);

        /**
         * Copies elements {@code [from, from + len)} of a float array to {@code dst[off...]} without conversion (for
         * float-only kernels; a double array throws).
         */
        public void get(int from, float[] dst, int off, int len) {
            throw new ND4JIllegalStateException("host op: float access to a " + getClass().getSimpleName() + " array");
        }

        /** Copies {@code src[off, off + len)} to elements {@code [to, to + len)} of a float array (as above). */
        public void set(int to, float[] src, int off, int len) {
            throw new ND4JIllegalStateException("host op: float access to a " + getClass().getSimpleName() + " array");
        }

        /** All elements. */
        public double[] all(int length) {
            double[] d = new double[length];
            get(0, d, 0, length);
            return d;
        }

        /** Access to {@code a}; {@code writable} requires {@code a} itself to be row-major (no copy is made). */
        public static Host of(INDArray a, boolean writable) {
            if (a.length() > Integer.MAX_VALUE) {
                throw new ND4JIllegalStateException("host op: arrays of more than 2^31 - 1 elements are not supported ("
                        + a.length() + ")");
            }
            if (writable && !rowMajor(a)) {
                throw new ND4JIllegalStateException("host op: output array is not row-major");
            }
            a = rowMajorCopy(a);
            int base = Math.toIntExact(a.offset());
            return switch (a.dataType()) {
                case FLOAT -> new Floats(a.data().asNioFloat(), base);
                case DOUBLE -> new Doubles(a.data().asNioDouble(), base);
                default -> throw new ND4JIllegalStateException("host op: data type " + a.dataType()
                        + " is not supported (float or double)");
            };
        }
    }

    /** {@code a} itself when it is row-major ({@link #rowMajor}), else a row-major copy of it. */
    static INDArray rowMajorCopy(INDArray a) {
        return rowMajor(a) ? a : a.dup('c');
    }

    /** Whether element {@code i} of {@code a} is at {@code offset + i} (strides of size-1 dimensions do not matter). */
    static boolean rowMajor(INDArray a) {
        long[] shape = a.shape();
        long[] stride = a.stride();
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expected) {
                return false;
            }
            expected *= shape[d];
        }
        return true;
    }

    private static final class Floats extends Host {
        private final FloatBuffer b;
        private final int base;

        Floats(FloatBuffer b, int base) {
            this.b = b;
            this.base = base;
        }

        /** Per-thread conversion buffer (grown as needed): host ops copy large blocks many times per pass. */
        private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

        private static float[] scratch(int len) {
            float[] f = SCRATCH.get();
            if (f.length < len) {
                f = new float[len];
                SCRATCH.set(f);
            }
            return f;
        }

        @Override
        public void get(int from, double[] dst, int off, int len) {
            float[] f = scratch(len);
            b.get(base + from, f, 0, len);
            for (int i = 0; i < len; i++) {
                dst[off + i] = f[i];
            }
        }

        @Override
        public void set(int to, double[] src, int off, int len) {
            float[] f = scratch(len);
            for (int i = 0; i < len; i++) {
                f[i] = (float) src[off + i];
            }
            b.put(base + to, f, 0, len);
        }

        @Override
        public void get(int from, float[] dst, int off, int len) {
            b.get(base + from, dst, off, len);
        }

        @Override
        public void set(int to, float[] src, int off, int len) {
            b.put(base + to, src, off, len);
        }
    }

    private static final class Doubles extends Host {
        private final DoubleBuffer b;
        private final int base;

        Doubles(DoubleBuffer b, int base) {
            this.b = b;
            this.base = base;
        }

        @Override
        public void get(int from, double[] dst, int off, int len) {
            b.get(base + from, dst, off, len);
        }

        @Override
        public void set(int to, double[] src, int off, int len) {
            b.put(base + to, src, off, len);
        }
    }

    // ------------------------------------------------------------------ threads

    /** The number of threads host ops use: ND4J's ({@code Nd4j.getEnvironment().maxThreads()}). */
    public static int threads() {
        return Math.max(1, Nd4j.getEnvironment().maxThreads());
    }

    /** Runs {@code body} for every task in {@code [0, tasks)}, on up to {@link #threads()} threads. */
    public static void parallelFor(int tasks, IntConsumer body) {
        int t = Math.min(tasks, threads());
        if (t <= 1) {
            for (int i = 0; i < tasks; i++) {
                body.accept(i);
            }
            return;
        }
        ForkJoinPool p = pool(t);
        p.invoke(new RecursiveAction() {
            @Override
            protected void compute() {
                List<RecursiveAction> parts = new ArrayList<>();
                for (int w = 0; w < t; w++) {
                    int worker = w;
                    parts.add(new RecursiveAction() {
                        @Override
                        protected void compute() {
                            for (int i = worker; i < tasks; i += t) {
                                body.accept(i);
                            }
                        }
                    });
                }
                invokeAll(parts);
            }
        });
    }

    private static ForkJoinPool pool(int threads) {
        ForkJoinPool p = pool;
        if (p == null || p.getParallelism() < threads) {
            synchronized (HostOp.class) {
                p = pool;
                if (p == null || p.getParallelism() < threads) {
                    p = new ForkJoinPool(threads, fjp -> {
                        var th = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(fjp);
                        th.setDaemon(true);
                        th.setName("dl4jcnnplugins-host-" + th.getPoolIndex());
                        return th;
                    }, null, false);
                    pool = p;
                }
            }
        }
        return p;
    }
}
