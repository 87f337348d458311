package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.samples.yolo.detection.Anchors;
import io.github.dl4jcnnplugins.samples.yolo.detection.SyntheticVoc;
import io.github.dl4jcnnplugins.samples.yolo.detection.VocDataset;
import io.github.dl4jcnnplugins.samples.yolo.detection.YoloBatches;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.parallelism.ParallelWrapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tiny configurations end to end: the loss falls, the evaluation and the CLI run, resume and 2 workers work. */
class SmokeTest {
    @TempDir
    static Path dir;
    static VocDataset train;

    @BeforeAll
    static void data() {
        System.setProperty("java.awt.headless", "true");
        new SyntheticVoc(64, 2, 4).write(dir.resolve("data"), 8, 4, 11);
        train = VocDataset.load(dir.resolve("data/train"), 64, null);
    }

    @Test
    void lossFallsAndEvaluationRuns() {
        ComputationGraph net = YoloModel.build(64, 4, train.classes().size(), true, 3e-3, 1);
        MultiDataSet batch = new YoloBatches(train, Anchors.forImageSize(64), 8, false, false, 1, 0).next();
        net.fit(batch);
        double first = net.score();
        for (int i = 0; i < 5; i++) {
            net.fit(batch);
        }
        double last = net.score();
        assertTrue(last < 0.8 * first, "loss " + first + " -> " + last);
        YoloAsff cli = new YoloAsff();
        VocDataset val = VocDataset.load(dir.resolve("data/val"), 64, train.classes());
        double[] maps = cli.evaluate(net, val, null);
        // the ASFF fusion weights: [N, 3, H, W], a softmax over the three levels
        org.nd4j.linalg.api.ndarray.INDArray w = io.github.dl4jcnnplugins.pyramid.AsffVertex.fusionWeights(net, YoloModel.ASFF[2]);
        assertEquals(List.of(4L, 3L, 8L, 8L), java.util.Arrays.stream(w.shape()).boxed().toList());
        assertEquals(1.0, w.sum(1).meanNumber().doubleValue(), 1e-4);
        cli.out = dir.resolve("heat");
        cli.asffHeatMaps(net, val);
        for (int level = 0; level < 3; level++) {
            assertTrue(Files.isRegularFile(cli.out.resolve("asff/level" + level + ".png")));
        }
        assertTrue(maps[0] >= 0 && maps[0] <= 1 && maps[1] >= 0 && maps[1] <= 1, maps[0] + " " + maps[1]);
    }

    /** The whole CLI on the plain pyramid (the ASFF graph is slower to run; lossFallsAndEvaluationRuns covers it). */
    @Test
    void cliTrainsResumesAndPredicts() throws Exception {
        Path out = dir.resolve("run");
        String[] common = {"--out", out.toString(), "--image-size", "64", "--width", "4", "--batch", "4",
                "--train-images", "8", "--val-images", "4", "--max-iterations", "1", "--seed", "3", "--no-asff"};
        YoloAsff first = new YoloAsff();
        assertEquals(0, new CommandLine(first).execute(concat(common, "--epochs", "1")));
        YoloAsff second = new YoloAsff();
        assertEquals(0, new CommandLine(second).execute(concat(common, "--epochs", "2", "--resume")));
        Map<String, Object> metrics = RunFiles.readJson(out.resolve("metrics.json"));
        List<?> epochs = (List<?>) metrics.get("epochs");
        assertEquals(2, epochs.size());
        @SuppressWarnings("unchecked") Map<String, Object> e2 = (Map<String, Object>) epochs.get(1);
        for (String k : List.of("epoch", "loss", "map50", "map50_95", "images_per_second", "seconds")) {
            assertTrue(e2.containsKey(k), k);
        }
        assertEquals(3, ((Number) metrics.get("seed")).intValue());
        assertTrue(second.finalLine.startsWith("final held-out mAP@0.5 = "), second.finalLine);
        for (String f : List.of("model.zip", "checkpoint.zip", "checkpoint.json", "loss.png", "map.png")) {
            assertTrue(Files.isRegularFile(out.resolve(f)) && Files.size(out.resolve(f)) > 0, f);
        }
        assertTrue(Files.list(out.resolve("heldout")).count() > 0);
        try (var files = Files.list(out)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().contains(".tmp")), "temporary files left in " + out);
        }
        // resuming gives the same model as an uninterrupted run
        Path straight = dir.resolve("straight");
        common[1] = straight.toString();
        assertEquals(0, new CommandLine(new YoloAsff()).execute(concat(common, "--epochs", "2")));
        double[] a = org.deeplearning4j.util.ModelSerializer.restoreComputationGraph(out.resolve("model.zip").toFile(), false)
                .params().toDoubleVector();
        double[] b = org.deeplearning4j.util.ModelSerializer.restoreComputationGraph(straight.resolve("model.zip").toFile(), false)
                .params().toDoubleVector();
        for (int i = 0; i < a.length; i++) {
            assertEquals(b[i], a[i], 1e-4 * (1 + Math.abs(b[i])), "parameter " + i);
        }
        Path img = dir.resolve("data/val/JPEGImages/000000.png");
        assertEquals(0, new CommandLine(new YoloAsff()).execute("--out", out.toString(), "--predict", img.toString()));
        assertTrue(Files.isRegularFile(out.resolve("predicted/000000.png")));
    }

    @Test
    void twoWorkersTrainWithParallelWrapper() {
        ComputationGraph net = YoloModel.build(64, 4, train.classes().size(), false, 3e-3, 1);
        YoloBatches batches = new YoloBatches(train, Anchors.forImageSize(64), 2, true, true, 1, 0);
        ParallelWrapper pw = new ParallelWrapper.Builder<>(net).workers(2).prefetchBuffer(2).averagingFrequency(1)
                .trainingMode(ParallelWrapper.TrainingMode.AVERAGING).build();
        double[] before = net.params().toDoubleVector();
        pw.fit(batches);
        pw.shutdown();
        double[] after = net.params().toDoubleVector();
        double change = 0;
        for (int i = 0; i < before.length; i++) {
            change += Math.abs(after[i] - before[i]);
        }
        assertTrue(change > 0, "parameters did not change");
        assertEquals(4, batches.numBatches());
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = new String[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
