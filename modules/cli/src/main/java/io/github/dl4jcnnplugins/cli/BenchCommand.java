package io.github.dl4jcnnplugins.cli;

import io.github.dl4jcnnplugins.base.TorchMapped;
import io.github.dl4jcnnplugins.torch.ReferenceModules;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import org.bytedeco.javacpp.Pointer;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;

/**
 * {@code plugins bench}: CPU timing of the plug-ins at the sizes of {@code bench_cases.json}, printed in the
 * layout of {@code bench_torch.py} so that the two tables can be put side by side.
 *
 * <p>Each case's plug-in is the only vertex, and the output, of a float32 network
 * ({@link ReferenceRunner#configuration}). {@code fwd} is {@link UpstreamGraph#forward}, the training forward of
 * {@code fit()} (activations in DL4J's workspace, not detached); {@code fwd+bwd} is {@link UpstreamGraph#forwardBackward}: DL4J's training forward and backward pass (computeGradientAndScore's
 * workspaces and code path, without a loss) for a fixed random upstream gradient, as {@code bench_torch.py} runs
 * {@code y = m(x); y.backward(g)}. Medians in milliseconds after warm-up iterations.
 */
@Command(name = "bench",
        description = {
                "Time forward and forward+backward of the plug-ins (CPU, float32).",
                "",
                "Cases as in shared/reference/bench_cases.json (name, module, args, inputs); the table has the "
                        + "layout of bench_torch.py. Each plug-in runs in train mode as the only vertex of a "
                        + "network; modules this version does not implement are listed as 'unsupported'."},
        sortOptions = false,
        mixinStandardHelpOptions = true)
final class BenchCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** USER_HZ: the unit of /proc/stat (100 on every Linux ABI that Java runs on). */
    private static final double CLOCK_TICKS = 100.0;

    @Spec
    CommandSpec spec;

    @Option(names = "--cases", required = true, paramLabel = "FILE",
            description = "Cases in the format of shared/reference/bench_cases.json.")
    Path casesFile;

    @Option(names = "--runs", defaultValue = "10", paramLabel = "N",
            description = "Timed iterations per quantity; the median is reported (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "6", paramLabel = "N",
            description = "Untimed iterations first; DL4J's workspaces learn their sizes in the first few "
                    + "(default: ${DEFAULT-VALUE}).")
    int warmup;

    /** Upper bound on the warm-up iterations that {@link #warmupSeconds} and {@link #warmupMaxSeconds} add. */
    static final int MAX_WARMUP = 5000;

    @Option(names = "--warmup-seconds", defaultValue = "10", paramLabel = "S",
            description = {"Warm up each quantity for at least S seconds (after the --warmup iterations; "
                    + "default: ${DEFAULT-VALUE}), then on until the JIT compiler has settled (--jit-quiet). The "
                    + "JVM's JIT compiles and recompiles SameDiff's execution paths over the first hundreds of "
                    + "passes, and its compiler threads compete for the CPUs meanwhile: measured SE fwd+bwd 80 ms "
                    + "after 6 warm-ups, 29-49 after 10 s, 19 after 40 s. A training run is in that steady state "
                    + "for all but its first minute."})
    double warmupSeconds;

    @Option(names = "--jit-quiet", defaultValue = "3", paramLabel = "S",
            description = {"After --warmup-seconds, warm up until the JIT compiler spent less than 2%% of the last S "
                    + "seconds compiling (java.lang.management's total compilation time; default: ${DEFAULT-VALUE}; "
                    + "0 = do not wait), at most --warmup-max-seconds and " + MAX_WARMUP + " iterations. Each "
                    + "case's warm-up (iterations, seconds, settled or not) is printed as a '# warm-up' line."})
    double jitQuietSeconds;

    @Option(names = "--warmup-max-seconds", defaultValue = "90", paramLabel = "S",
            description = "Longest warm-up per quantity while waiting for the JIT (default: ${DEFAULT-VALUE}).")
    double warmupMaxSeconds;

    @Option(names = "--threads", defaultValue = "2", paramLabel = "N",
            description = {"Threads for ND4J's ops and BLAS (default: ${DEFAULT-VALUE}). bin/plugins also exports "
                    + "OMP_NUM_THREADS=N for the native libraries unless OMP_NUM_THREADS is already set; when "
                    + "starting the JVM yourself, set OMP_NUM_THREADS too."})
    int threads;

    @Option(names = "--only", arity = "1..*", paramLabel = "NAME",
            description = "Run only these case names.")
    List<String> only;

    @Option(names = "--max-bg", defaultValue = "5", paramLabel = "PCT",
            description = "Re-time a case when other processes used more than this %% of the CPUs "
                    + "(with --retries; default: ${DEFAULT-VALUE}).")
    double maxBg;

    @Option(names = "--retries", defaultValue = "0", paramLabel = "N",
            description = "How often to re-time a disturbed case; the least disturbed try is kept "
                    + "(default: ${DEFAULT-VALUE}).")
    int retries;

    @Option(names = "--retry-wait", defaultValue = "20", paramLabel = "SECONDS",
            description = "Pause before re-timing a disturbed case (default: ${DEFAULT-VALUE}).")
    double retryWait;

    /** One entry of the cases file. */
    record BenchCase(String name, String module, JsonNode args, List<long[]> inputs) {
        String shapes() {
            return inputs.stream()
                    .map(s -> Arrays.stream(s).mapToObj(Long::toString).collect(Collectors.joining("x")))
                    .collect(Collectors.joining(","));
        }
    }

    /** Median times of one case, the background load while it ran, and its peak memory (MB; NaN if unknown). */
    record Timing(double fwdMs, double fwdBwdMs, double bgPercent, Memory memory, Warmup fwdWarmup, Warmup fwdBwdWarmup) {
    }

    /** Peak memory of one untimed forward+backward, in MB (see {@link MemoryProbe}). */
    record Memory(double rssMb, double heapMb) {
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        CommandLine cl = spec.commandLine();
        if (runs < 1 || warmup < 0 || warmupSeconds < 0 || jitQuietSeconds < 0 || warmupMaxSeconds < 0 || threads < 1
                || retries < 0) {
            throw new CommandLine.ParameterException(cl, "--runs and --threads must be at least 1, --warmup, "
                    + "--warmup-seconds, --jit-quiet, --warmup-max-seconds and --retries at least 0");
        }
        List<BenchCase> cases = selected(readCases(casesFile));

        useThreads(threads);

        PrintWriter out = cl.getOut();
        header(out);
        int errors = 0;
        for (BenchCase c : cases) {
            String prefix = String.format(Locale.ROOT, "%-22s %-20s %-44s", c.name(), c.module(), c.shapes());
            if (!ReferenceModules.known().contains(c.module())) {
                out.println(String.format(Locale.ROOT, "%s %22s %5s", prefix, "unsupported", "-"));
                out.flush();
                continue;
            }
            try {
                Timing best = null;
                for (int attempt = 0; attempt <= retries; attempt++) {
                    if (attempt > 0) {
                        Thread.sleep((long) (retryWait * 1000));
                    }
                    Timing t = time(c);
                    if (best == null || !(t.bgPercent() >= best.bgPercent())) {
                        best = t;
                    }
                    if (t.bgPercent() <= maxBg) {
                        break;
                    }
                }
                Memory m = best.memory();
                out.println(String.format(Locale.ROOT, "%s %10.2f %11.2f %5.1f %8.1f %8.1f", prefix, best.fwdMs(),
                        best.fwdBwdMs(), best.bgPercent(), m.rssMb(), m.heapMb()));
                out.println("# warm-up " + c.name() + ": fwd " + best.fwdWarmup() + ", fwd+bwd " + best.fwdBwdWarmup());
            } catch (Exception | LinkageError | OutOfMemoryError e) {
                errors++;
                out.println(String.format(Locale.ROOT, "%s %22s %5s", prefix, "error", "-"));
                out.flush();
                PluginsCli.error(cl, c.name() + " (" + c.module() + ")", e, PluginsCli.isVerbose(cl));
            }
            out.flush();
            System.gc(); // release the previous case's native buffers before timing the next
        }
        return errors > 0 ? PluginsCli.EXIT_FAILURE : 0;
    }

    private void header(PrintWriter out) {
        String omp = System.getenv("OMP_NUM_THREADS");
        out.println("# dl4j-cnn-plugins " + SystemInfo.versions() + ", backend " + Nd4j.getBackend().getClass().getSimpleName()
                + ", nproc " + Runtime.getRuntime().availableProcessors()
                + ", threads " + Nd4j.getEnvironment().maxThreads()
                + " (OMP_NUM_THREADS " + (omp == null ? "unset" : omp) + ")"
                + ", cpu: " + SystemInfo.cpuModel());
        out.println("# " + SystemInfo.nativeBuild());
        out.println("# float32, train mode; median of " + runs + " runs after " + warmup + " warm-up and then more "
                + "for at least " + warmupSeconds + " s per quantity and until the JIT compiler has settled (< 2% of the "
                + "last " + jitQuietSeconds + " s spent compiling; at most " + Math.max(warmupSeconds, warmupMaxSeconds)
                + " s and " + MAX_WARMUP + " iterations; see the '# warm-up' lines); "
                + "fwd = train-mode forward, fwd+bwd = train-mode forward + backward(upstream), "
                + "driven through DL4J's training path: computeGradientAndScore()'s forward (activations in its "
                + "workspace) and backward with the upstream gradient as the output's external error, no loss layer "
                + "(default workspace mode)");
        out.println("# bg% = CPU used by other processes during the case, in % of all CPUs "
                + "(anything above a few % means the timing was disturbed)"
                + (retries > 0 ? String.format(Locale.ROOT, "; cases above %s%% are re-timed up to %dx, least disturbed kept",
                fmt(maxBg), retries) : ""));
        out.println("# memory: one extra untimed train-mode forward+backward after the timed runs; peak MB = peak growth of "
                + "the process's resident memory (JavaCPP Pointer.physicalBytes(), sampled every ~1 ms) over its level "
                + "just before the pass, after a GC and malloc_trim: the native working memory the pass needs beyond "
                + "parameters and inputs (ND4J's CPU buffers are not counted by Pointer.totalBytes()); heap MB = peak JVM "
                + "heap used during the pass minus the level before");
        out.println(String.format(Locale.ROOT, "%-22s %-20s %-44s %10s %11s %5s %8s %8s",
                "name", "module", "input shapes", "fwd ms", "fwd+bwd ms", "bg%", "peak MB", "heap MB"));
        out.flush();
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    /** Times one case (see the class comment). */
    private Timing time(BenchCase c) {
        TorchMapped plugin = ReferenceModules.create(c.module(), c.args());
        UpstreamGraph net = new UpstreamGraph(ReferenceRunner.configuration(plugin, c.inputs(), DataType.FLOAT));
        net.init();
        net.initGradientsView();
        Nd4j.getRandom().setSeed(0);
        INDArray[] xs = new INDArray[c.inputs().size()];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = Nd4j.randn(DataType.FLOAT, c.inputs().get(i));
        }

        BackgroundLoad load = new BackgroundLoad();
        long[] outShape = net.forward(xs);   // (counts as the first forward warm-up)
        Timed fwd = timed(() -> net.forward(xs), 1);
        INDArray upstream = Nd4j.randn(DataType.FLOAT, outShape);
        Timed fb = timed(() -> net.forwardBackward(xs, upstream), 0);
        double bg = load.percent();
        Memory memory = MemoryProbe.measure(() -> net.forwardBackward(xs, upstream));
        return new Timing(median(fwd.ms()), median(fb.ms()), bg, memory, fwd.warmup(), fb.warmup());
    }

    /** Per-iteration times (ms) of the timed passes of one quantity, and how it was warmed up. */
    record Timed(double[] ms, Warmup warmup) {
    }

    /** How one quantity was warmed up: iterations, seconds, and whether the JIT had settled. */
    record Warmup(int iterations, double seconds, boolean settled) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d iterations in %.1f s%s", iterations, seconds,
                    settled ? "" : " (JIT still compiling)");
        }
    }

    /**
     * Per-iteration times (ms) of {@code runs} timed passes, after {@code warmup} untimed ones (less {@code done}
     * already run), then more until {@code warmupSeconds} have passed and the JIT has settled (see
     * {@link #jitQuietSeconds}; at most {@link #warmupMaxSeconds} and {@link #MAX_WARMUP} iterations).
     */
    private Timed timed(Runnable pass, int done) {
        long start = System.nanoTime();
        long budget = (long) (warmupSeconds * 1e9);
        long max = (long) (Math.max(warmupSeconds, warmupMaxSeconds) * 1e9);
        long window = (long) (jitQuietSeconds * 1e9);
        JitClock jit = new JitClock();
        QuietWindow quiet = new QuietWindow(window);
        int i = done;
        boolean settled = window <= 0;   // with --jit-quiet 0 nothing is waited for
        for (; i < MAX_WARMUP; i++) {
            long now = System.nanoTime();
            boolean isQuiet = window > 0 && quiet.record(now, jit.millis());
            if (i >= warmup && now - start >= budget) {
                if (window <= 0 || isQuiet) {
                    settled = true;
                    break;
                }
                if (now - start >= max) {
                    break;
                }
            }
            pass.run();
        }
        Warmup warm = new Warmup(i, (System.nanoTime() - start) / 1e9, settled || !jit.available());
        double[] t = new double[runs];
        for (int r = 0; r < runs; r++) {
            long t0 = System.nanoTime();
            pass.run();
            t[r] = (System.nanoTime() - t0) / 1e6;
        }
        return new Timed(t, warm);
    }

    /**
     * Whether the JIT compiler has been quiet: fed the compiler's total time at each warm-up iteration, it answers
     * true once the compiler spent less than 2% of the last {@code window} nanoseconds (wall clock, at least one full
     * window of samples) compiling.
     */
    static final class QuietWindow {
        private final long window;
        private final java.util.ArrayDeque<long[]> samples = new java.util.ArrayDeque<>();

        QuietWindow(long windowNanos) {
            this.window = windowNanos;
        }

        /** Records {@code compiledMs} (total compilation time) at {@code nowNanos}; true if the JIT was quiet. */
        boolean record(long nowNanos, long compiledMs) {
            samples.addLast(new long[]{nowNanos, compiledMs});
            while (samples.size() > 1) {   // keep the newest sample that is at least a window old, and all after it
                java.util.Iterator<long[]> it = samples.iterator();
                it.next();
                if (nowNanos - it.next()[0] < window) {
                    break;
                }
                samples.removeFirst();
            }
            long[] first = samples.peekFirst();
            long span = nowNanos - first[0];
            return span >= window && compiledMs - first[1] < 0.02 * span / 1e6;
        }
    }

    /** The JVM's total JIT compilation time so far (ms), if the JVM reports it. */
    static final class JitClock {
        private final java.lang.management.CompilationMXBean bean = ManagementFactory.getCompilationMXBean();

        boolean available() {
            return bean != null && bean.isCompilationTimeMonitoringSupported();
        }

        long millis() {
            return available() ? bean.getTotalCompilationTime() : 0;
        }
    }

    /**
     * Peak memory of one action: a daemon thread samples JavaCPP's counters every ~1 ms while it runs (the samples
     * are not part of any timing). Garbage from earlier passes is collected first so that the levels before the
     * action are comparable between cases.
     */
    static final class MemoryProbe {
        private MemoryProbe() {
        }

        static Memory measure(Runnable action) {
            for (int i = 0; i < 2; i++) {   // ND4J frees collected buffers on its deallocator thread: give it time
                System.gc();
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            trimMalloc();
            long rss0 = Pointer.physicalBytes();
            List<MemoryPoolMXBean> heap = ManagementFactory.getMemoryPoolMXBeans().stream()
                    .filter(p -> p.getType() == MemoryType.HEAP).toList();
            long heap0 = heap.stream().mapToLong(p -> p.getUsage().getUsed()).sum();
            heap.forEach(MemoryPoolMXBean::resetPeakUsage);
            AtomicLong peak = new AtomicLong(rss0);
            AtomicBoolean done = new AtomicBoolean();
            Thread watcher = new Thread(() -> {
                while (!done.get()) {
                    peak.accumulateAndGet(Pointer.physicalBytes(), Math::max);
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "bench-memory-probe");
            watcher.setDaemon(true);
            watcher.start();
            try {
                action.run();
            } finally {
                done.set(true);
                try {
                    watcher.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            peak.accumulateAndGet(Pointer.physicalBytes(), Math::max);
            long heapPeak = heap.stream().mapToLong(p -> p.getPeakUsage().getUsed()).sum();
            double mb = 1024.0 * 1024.0;
            return new Memory((peak.get() - rss0) / mb, Math.max(0, heapPeak - heap0) / mb);
        }

        /** glibc malloc_trim(0) through JavaCPP (private there), so freed native memory leaves the resident set. */
        private static void trimMalloc() {
            try {
                Method m = Pointer.class.getDeclaredMethod("trimMemory");
                m.setAccessible(true);
                m.invoke(null);
            } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
                // not glibc, or a JavaCPP without it: the level before the pass then includes freed memory
            }
        }
    }

    /** ND4J's op threads and the BLAS threads (OMP_NUM_THREADS must be set before the JVM starts). */
    static void useThreads(int threads) {
        Nd4j.getEnvironment().setMaxThreads(threads);
        Nd4j.getEnvironment().setMaxMasterThreads(threads);
        Nd4j.factory().blas().setMaxThreads(threads);
    }

    static double median(double[] values) {
        double[] s = values.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    static List<BenchCase> readCases(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("no such file: " + file);
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException("cannot read " + file + " as JSON: " + PluginsCli.oneLine(e), e);
        }
        if (root == null || !root.isArray()) {
            throw new IllegalArgumentException(file + ": expected a JSON list of {name, module, args, inputs}");
        }
        List<BenchCase> cases = new ArrayList<>();
        for (JsonNode n : root) {
            String name = n.path("name").asText("");
            String module = n.path("module").asText("");
            JsonNode inputs = n.get("inputs");
            if (name.isEmpty() || module.isEmpty() || inputs == null || !inputs.isArray() || inputs.isEmpty()) {
                throw new IllegalArgumentException(file + ": case " + (cases.size() + 1)
                        + " needs \"name\", \"module\" and \"inputs\" (a list of NCHW shapes)");
            }
            List<long[]> shapes = new ArrayList<>();
            for (JsonNode s : inputs) {
                long[] shape = new long[s.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = s.get(i).asLong();
                }
                if (shape.length != 4) {
                    throw new IllegalArgumentException(file + ": case " + name + ": input shapes must be NCHW; got "
                            + Arrays.toString(shape));
                }
                shapes.add(shape);
            }
            cases.add(new BenchCase(name, module, n.get("args"), shapes));
        }
        return cases;
    }

    private List<BenchCase> selected(List<BenchCase> all) {
        if (only == null || only.isEmpty()) {
            return all;
        }
        Set<String> names = all.stream().map(BenchCase::name).collect(Collectors.toCollection(LinkedHashSet::new));
        List<String> missing = only.stream().filter(n -> !names.contains(n)).toList();
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("no case named " + String.join(", ", missing) + " in " + casesFile
                    + "; it has " + names);
        }
        return all.stream().filter(c -> only.contains(c.name())).toList();
    }

    /**
     * CPU time used by <em>other</em> processes since construction, as in {@code bench_torch.py}: machine-wide busy
     * time from /proc/stat minus this process's CPU time, in % of all CPUs over the wall time.
     */
    static final class BackgroundLoad {
        private final long t0 = System.nanoTime();
        private final double busy0 = busySeconds();
        private final double own0 = ownSeconds();

        double percent() {
            double wall = (System.nanoTime() - t0) / 1e9;
            double busy1 = busySeconds();
            if (Double.isNaN(busy1) || Double.isNaN(busy0) || Double.isNaN(own0) || wall <= 0) {
                return Double.NaN;
            }
            double other = (busy1 - busy0) - (ownSeconds() - own0);
            return Math.max(0.0, 100.0 * other / (wall * Runtime.getRuntime().availableProcessors()));
        }

        private static double busySeconds() {
            try {
                String first = Files.readAllLines(Path.of("/proc/stat")).get(0);
                String[] f = first.trim().split("\\s+");
                long[] v = new long[8];
                for (int i = 0; i < 8 && i + 1 < f.length; i++) {
                    v[i] = Long.parseLong(f[i + 1]);
                }
                // user nice system idle iowait irq softirq steal
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLOCK_TICKS;
            } catch (IOException | RuntimeException e) {
                return Double.NaN;
            }
        }

        private static double ownSeconds() {
            if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
                long ns = os.getProcessCpuTime();
                return ns < 0 ? Double.NaN : ns / 1e9;
            }
            return Double.NaN;
        }
    }
}
