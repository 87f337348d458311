package io.github.dl4jcnnplugins.testing;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.PluginLayer;
import io.github.dl4jcnnplugins.torch.Parity;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.File;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The one harness every plug-in test goes through: golden parity against the PyTorch reference, gradient check,
 * JSON and ModelSerializer round trips, declared-vs-real output shape, use in a MultiLayerNetwork, and exact
 * error messages.
 */
public final class PluginHarness {
    /** Tolerance of golden parity ({@link Parity}: max |ours - ref| / max(max |ref|, 1e-6), per array). */
    public static final double PARITY_TOLERANCE = Parity.TOLERANCE;

    private static final ObjectMapper JSON = new ObjectMapper();

    private PluginHarness() {
    }

    static {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    // ------------------------------------------------------------------ golden parity

    /** A golden case from {@code src/test/resources/goldens}: its json description and its arrays. */
    public record Golden(String name, JsonNode meta, Map<String, INDArray> arrays) {
        public String module() {
            return meta.get("module").asText();
        }

        public JsonNode args() {
            return meta.get("args");
        }
    }

    public static Golden golden(String name) {
        try {
            URL json = PluginHarness.class.getResource("/goldens/" + name + ".json");
            URL npz = PluginHarness.class.getResource("/goldens/" + name + ".npz");
            assertNotNull(json, "missing golden " + name + ".json (scripts/make-goldens.sh)");
            assertNotNull(npz, "missing golden " + name + ".npz (scripts/make-goldens.sh)");
            return new Golden(name, JSON.readTree(new File(json.toURI())), Nd4j.createFromNpzFile(new File(npz.toURI())));
        } catch (Exception e) {
            throw new AssertionError("cannot read golden " + name, e);
        }
    }

    /** Every golden file name (without extension) whose case uses reference module {@code module}. */
    public static List<String> goldenNames(String module) {
        try {
            Path dir = Path.of(PluginHarness.class.getResource("/goldens").toURI());
            try (var files = Files.list(dir)) {
                return files.filter(p -> p.toString().endsWith(".json")).sorted().filter(p -> {
                    try {
                        return module.equals(JSON.readTree(p.toFile()).get("module").asText());
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                }).map(p -> p.getFileName().toString().replace(".json", "")).toList();
            }
        } catch (Exception e) {
            throw new AssertionError("cannot list goldens", e);
        }
    }

    /** max |actual - expected| / max |expected| (absolute error where the reference is all zeros). */
    public static double relativeError(INDArray expected, INDArray actual) {
        assertArrayEquals(expected.shape(), actual.shape(), "shape");
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        double scale = expected.amaxNumber().doubleValue();
        return scale == 0 ? diff : diff / scale;
    }

    /**
     * Runs golden case {@code name} through {@link ReferenceRunner} and requires every reference result
     * (eval / train outputs, input and parameter gradients, running statistics) to match.
     *
     * @return the worst relative error per key
     */
    public static Map<String, Double> assertGoldenParity(String name) {
        Golden g = golden(name);
        Map<String, INDArray> ours = ReferenceRunner.run(g.module(), g.args(), g.arrays());
        Map<String, Double> errors = new TreeMap<>();
        StringBuilder failures = new StringBuilder();
        for (Map.Entry<String, INDArray> e : g.arrays().entrySet()) {
            String k = e.getKey();
            if (k.startsWith("input.") || k.startsWith("param.") || k.equals("grad.upstream")) {
                continue;
            }
            INDArray mine = ours.get(k);
            if (mine == null) {
                failures.append("\n  ").append(k).append(": not produced");
                continue;
            }
            double err = Parity.error(e.getValue(), mine);
            errors.put(k, err);
            if (!(err <= PARITY_TOLERANCE)) {
                failures.append("\n  ").append(k).append(": relative error ").append(err);
            }
        }
        record(name, errors);
        if (failures.length() > 0) {
            fail(name + " differs from the PyTorch reference:" + failures + "\n  all: " + errors);
        }
        return errors;
    }

    /** Appends the case's worst error to {@code target/parity.tsv} (read by people, never by tests). */
    private static synchronized void record(String name, Map<String, Double> errors) {
        double worst = errors.values().stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
        String worstKey = errors.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse("-");
        try {
            Files.writeString(Path.of("target", "parity.tsv"), String.format("%s\t%.3e\t%s%n", name, worst, worstKey),
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (java.io.IOException e) {
            // the report is a convenience; parity itself is asserted
        }
    }

    // ------------------------------------------------------------------ networks used by the checks

    /** input -> 1x1 conv (tanh, so that dL/dInput of the plug-in is checked) -> plug-in -> dense MSE output. */
    public static ComputationGraph checkNetwork(PluginLayer plugin, long[] inputShape, long seed) {
        return checkNetwork(plugin, inputShape, seed, new NoOp());
    }

    /** {@link #checkNetwork(PluginLayer, long[], long)} trained with {@code updater}. */
    public static ComputationGraph checkNetwork(PluginLayer plugin, long[] inputShape, long seed, IUpdater updater) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).updater(updater).seed(seed)
                .graphBuilder()
                .addInputs("in").setInputTypes(InputType.convolutional(inputShape[2], inputShape[3], inputShape[1]))
                .addLayer("pre", new ConvolutionLayer.Builder(1, 1).nOut(inputShape[1]).activation(Activation.TANH).build(), "in")
                .addLayer("plugin", plugin, "pre")
                .addLayer("out", new OutputLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY)
                        .nOut(3).build(), "plugin")
                .setOutputs("out").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    /**
     * One training step's results on a {@link #checkNetwork}: every gradient (DL4J key) after
     * {@code computeGradientAndScore} on {@code x} and {@code labels}, and the plug-in's inference output under
     * {@code "output"}; copies.
     */
    public static Map<String, INDArray> outputAndGradients(ComputationGraph net, INDArray x, INDArray labels) {
        net.setInputs(x);
        net.setLabels(labels);
        net.computeGradientAndScore();
        Map<String, INDArray> out = new TreeMap<>();
        net.gradient().gradientForVariable().forEach((k, v) -> out.put(k, v.dup()));
        out.put("output", net.feedForward(x, false).get("plugin").dup());
        return out;
    }

    /**
     * Asserts that {@code actual} has the same keys as {@code expected} and each array is within {@code tolerance} of
     * its expected one ({@link #relativeError}).
     */
    public static void assertAllClose(Map<String, INDArray> expected, Map<String, INDArray> actual, double tolerance) {
        assertEquals(expected.keySet(), actual.keySet());
        for (String k : expected.keySet()) {
            double err = relativeError(expected.get(k), actual.get(k));
            assertTrue(err < tolerance, k + ": relative error " + err);
        }
    }

    public static INDArray randn(long seed, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, shape);
    }

    // ------------------------------------------------------------------ the checks

    /**
     * Double-precision {@link GradientCheckUtil} over the plug-in and the conv before it. Every parameter entry is
     * checked: GradientCheckUtil (M2.1) ignores {@code subset}/{@code maxPerParam} for a ComputationGraph, so keep
     * the configuration small or use {@link #assertGradientsCheckSampled}.
     */
    public static void assertGradientsCheck(Supplier<? extends PluginLayer> plugin, long[] inputShape) {
        ComputationGraph net = checkNetwork(plugin.get(), inputShape, 42);
        INDArray x = randn(1, inputShape);
        INDArray y = randn(2, inputShape[0], 3);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(net)
                .inputs(new INDArray[]{x}).labels(new INDArray[]{y})
                .epsilon(1e-6).maxRelError(1e-5).minAbsoluteError(1e-9)
                .subset(true).maxPerParam(40)
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY));
        assertTrue(ok, "gradient check failed for " + plugin.get().label());
    }

    /**
     * Double-precision {@link GradientCheckUtil} over the plug-in and the 1x1 conv before it, in a MultiLayerNetwork,
     * whose check really samples about {@code maxPerParam} evenly spaced entries per parameter array (the
     * ComputationGraph check ignores {@code subset} in 1.0.0-M2.1 and perturbs every entry), after {@code adjust}
     * has changed the plug-in's freshly initialised parameters (by key), e.g. to move zero-initialised offset or
     * transform layers away from the points where bilinear sampling has kinks (integer sample positions).
     */
    public static void assertGradientsCheckSampled(Supplier<? extends PluginLayer> plugin, long[] inputShape,
                                                   int maxPerParam, Consumer<Map<String, INDArray>> adjust) {
        PluginLayer layer = plugin.get();
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).updater(new NoOp()).seed(42).list()
                .layer(new ConvolutionLayer.Builder(1, 1).nOut(inputShape[1]).activation(Activation.TANH).build())
                .layer(layer)
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY).nOut(3).build())
                .setInputType(InputType.convolutional(inputShape[2], inputShape[3], inputShape[1]))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        adjust.accept(net.getLayer(1).paramTable());
        INDArray x = randn(1, inputShape);
        INDArray y = randn(2, inputShape[0], 3);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(x).labels(y)
                .epsilon(1e-6).maxRelError(1e-5).minAbsoluteError(1e-9)
                .subset(true).maxPerParam(maxPerParam)
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY));
        assertTrue(ok, "gradient check failed for " + layer.label());
    }

    /** {@link #assertGradientsCheckSampled} with the parameters as initialised. */
    public static void assertGradientsCheckSampled(Supplier<? extends PluginLayer> plugin, long[] inputShape, int maxPerParam) {
        assertGradientsCheckSampled(plugin, inputShape, maxPerParam, p -> { });
    }

    /** {@link #assertGradientsCheckSampled} with 40 entries per parameter, after {@code adjust}. */
    public static void assertGradientsCheck(Supplier<? extends PluginLayer> plugin, long[] inputShape,
                                            Consumer<Map<String, INDArray>> adjust) {
        assertGradientsCheckSampled(plugin, inputShape, 40, adjust);
    }

    /**
     * JSON round trip of the configuration (equal configuration, identical outputs) and ModelSerializer
     * save/restore (identical parameters and outputs, in inference and training mode).
     */
    public static void assertRoundTrips(Supplier<? extends PluginLayer> plugin, long[] inputShape) throws Exception {
        ComputationGraph net = checkNetwork(plugin.get(), inputShape, 7);
        INDArray x = randn(3, inputShape);
        INDArray expected = net.outputSingle(false, x);

        String json = net.getConfiguration().toJson();
        ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(json);
        assertEquals(net.getConfiguration(), back, "configuration after JSON round trip");
        assertEquals(json, back.toJson(), "JSON after a second round trip");
        ComputationGraph fromJson = new ComputationGraph(back);
        fromJson.init(net.params().dup(), false);
        assertEquals(expected, fromJson.outputSingle(false, x), "output after JSON round trip");

        File f = Files.createTempFile("plugin", ".zip").toFile();
        try {
            ModelSerializer.writeModel(net, f, true);
            ComputationGraph restored = ModelSerializer.restoreComputationGraph(f, true);
            assertEquals(net.params(), restored.params(), "parameters after ModelSerializer round trip");
            assertEquals(expected, restored.outputSingle(false, x), "output after ModelSerializer round trip");
            assertEquals(net.getLayer("plugin").getClass(), restored.getLayer("plugin").getClass(), "runtime class");
        } finally {
            assertTrue(f.delete());
        }
    }

    /** The output type the configuration declares equals the shape the layer really produces. */
    public static void assertOutputTypeMatches(Supplier<? extends PluginLayer> plugin, long[] inputShape) {
        ComputationGraph net = checkNetwork(plugin.get(), inputShape, 5);
        InputType declared = net.getConfiguration().getLayerActivationTypes(
                InputType.convolutional(inputShape[2], inputShape[3], inputShape[1])).get("plugin");
        INDArray actual = net.feedForward(randn(4, inputShape), false).get("plugin");
        long[] s = actual.shape();
        assertEquals(InputType.convolutional(s[2], s[3], s[1]), declared, "declared output type vs real output " + Arrays.toString(s));
    }

    /** Works inside a MultiLayerNetwork: nIn inferred, trains a few SGD steps, output of one sample equals its row in a batch. */
    public static void assertWorksInMultiLayerNetwork(Supplier<? extends PluginLayer> plugin, long[] inputShape) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE).updater(new Sgd(0.05)).seed(3).list()
                .layer(new ConvolutionLayer.Builder(3, 3).padding(1, 1).nOut(inputShape[1]).activation(Activation.RELU).build())
                .layer(plugin.get())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY).nOut(2).build())
                .setInputType(InputType.convolutional(inputShape[2], inputShape[3], inputShape[1]))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        INDArray x = randn(5, inputShape);
        INDArray y = randn(6, inputShape[0], 2);
        double before = net.score(new org.nd4j.linalg.dataset.DataSet(x, y));
        for (int i = 0; i < 5; i++) {
            net.fit(x, y);
        }
        double after = net.score(new org.nd4j.linalg.dataset.DataSet(x, y));
        assertTrue(after < before, "loss did not fall: " + before + " -> " + after);
        INDArray all = net.output(x, false);
        INDArray first = net.output(x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 1)), false);
        assertTrue(relativeError(all.getRow(0).reshape(first.shape()), first) < 1e-12, "sample alone vs in batch");
    }

    /**
     * BatchNorm inside a plug-in behaves like PyTorch's and like DL4J's own BatchNormalization, in a
     * ComputationGraph trained with SGD: {@code fit} changes the running statistics exactly as one training
     * forward does (the updater leaves them alone: NoOp, zero gradient); inference uses them (one sample alone
     * equals its row in the batch, and differs from the training-mode output); ModelSerializer restores
     * parameters, running statistics and outputs, and training continues identically after the restore.
     */
    public static void assertBatchNormSemantics(Supplier<? extends PluginLayer> plugin, long[] inputShape) throws Exception {
        ComputationGraph net = checkNetwork(plugin.get(), inputShape, 11, new Sgd(0.1));
        PluginLayer conf = (PluginLayer) net.getLayer("plugin").conf().getLayer();
        List<String> stats = conf.paramSpecs().stream().filter(s -> s.kind() == ParamSpec.Kind.RUNNING_STAT)
                .map(ParamSpec::key).toList();
        assertFalse(stats.isEmpty(), conf.label() + " has no running statistics");
        INDArray x = randn(21, inputShape);
        INDArray y = randn(22, inputShape[0], 3);

        Map<String, INDArray> initial = paramsOf(net);
        for (int it = 0; it < 3; it++) {
            Map<String, INDArray> before = paramsOf(net);
            // What one training forward alone does to the running statistics, from the same starting point:
            ComputationGraph probe = net.clone();
            probe.feedForward(x, true);
            Map<String, INDArray> predicted = paramsOf(probe);
            net.fit(new INDArray[]{x}, new INDArray[]{y});
            Map<String, INDArray> after = paramsOf(net);
            for (String k : stats) {
                assertTrue(relativeError(predicted.get(k), after.get(k)) < 1e-12,
                        "fit changed " + k + " other than one training forward does (updater touched it?)");
            }
            boolean trained = false;
            for (ParamSpec s : conf.paramSpecs()) {
                trained |= s.kind().trainable() && !before.get(s.key()).equals(after.get(s.key()));
            }
            assertTrue(trained, "fit did not change any trainable parameter of the plug-in");
        }
        // Not every statistic must move: a BatchNorm fed by another BatchNorm through linear ops only (RFB's
        // ConvLinear) sees a batch mean equal to the first one's bias, whose gradient is zero, so its running mean
        // legitimately stays 0. Every variance moves, and so does something overall.
        double change = 0;
        for (String k : stats) {
            double c = initial.get(k).sub(paramsOf(net).get(k)).amaxNumber().doubleValue();
            change = Math.max(change, c);
            assertTrue(!k.endsWith("running-var") || c > 1e-9, "3 fits did not change running variance " + k);
        }
        assertTrue(change > 1e-6, "3 fits did not change the running statistics (max change " + change + ")");

        INDArray inference = net.outputSingle(false, x);
        INDArray first = net.outputSingle(false, x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 1)));
        assertTrue(relativeError(inference.getRow(0).reshape(first.shape()), first) < 1e-12,
                "inference output of one sample alone differs from its row in the batch (batch statistics used?)");

        File f = Files.createTempFile("plugin-bn", ".zip").toFile();
        try {
            ModelSerializer.writeModel(net, f, true);
            ComputationGraph restored = ModelSerializer.restoreComputationGraph(f, true);
            assertEquals(net.params(), restored.params(), "parameters and running statistics after ModelSerializer");
            assertEquals(inference, restored.outputSingle(false, x), "inference output after ModelSerializer");
            net.fit(new INDArray[]{x}, new INDArray[]{y});
            restored.fit(new INDArray[]{x}, new INDArray[]{y});
            assertEquals(net.params(), restored.params(), "parameters after one more fit of both");
        } finally {
            assertTrue(f.delete());
        }

        INDArray training = net.clone().outputSingle(true, x);
        assertTrue(relativeError(training, net.outputSingle(false, x)) > 1e-6,
                "training-mode output equals inference output: batch statistics not used in training");
    }

    private static Map<String, INDArray> paramsOf(ComputationGraph net) {
        Map<String, INDArray> m = new TreeMap<>();
        net.getLayer("plugin").paramTable().forEach((k, v) -> m.put(k, v.dup()));
        return m;
    }

    /**
     * Runs {@code action} with the system property {@code key} set to {@code value} (the plug-ins read their
     * strategy properties when a graph is built) and restores the property's previous state afterwards.
     */
    public static <T> T withSystemProperty(String key, String value, Supplier<T> action) {
        String before = System.getProperty(key);
        System.setProperty(key, value);
        try {
            return action.get();
        } finally {
            if (before == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, before);
            }
        }
    }

    /** Asserts that {@code action} throws IllegalArgumentException (possibly wrapped) whose message contains every fragment. */
    public static String assertErrorMentions(Runnable action, String... fragments) {
        Throwable t = assertThrows(Throwable.class, action::run);
        StringBuilder all = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            all.append(c.getMessage()).append(" | ");
        }
        String msg = all.toString();
        for (String f : fragments) {
            assertTrue(msg.contains(f), "error message lacks '" + f + "': " + msg);
        }
        assertFalse(t instanceof NullPointerException, "NPE instead of a clear error: " + msg);
        return msg;
    }
}
