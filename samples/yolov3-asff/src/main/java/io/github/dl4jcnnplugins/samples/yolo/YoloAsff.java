package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.base.NativeHelpers;
import io.github.dl4jcnnplugins.pyramid.AsffVertex;
import io.github.dl4jcnnplugins.samples.yolo.detection.Anchors;
import io.github.dl4jcnnplugins.samples.yolo.detection.Detection;
import io.github.dl4jcnnplugins.samples.yolo.detection.GroundTruth;
import io.github.dl4jcnnplugins.samples.yolo.detection.MeanAveragePrecision;
import io.github.dl4jcnnplugins.samples.yolo.detection.SyntheticVoc;
import io.github.dl4jcnnplugins.samples.yolo.detection.VocDataset;
import io.github.dl4jcnnplugins.samples.yolo.detection.YoloBatches;
import io.github.dl4jcnnplugins.samples.yolo.detection.YoloDecoder;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.datavec.image.loader.NativeImageLoader;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.deeplearning4j.parallelism.ParallelWrapper;
import org.deeplearning4j.util.ModelSerializer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * The main job: trains a YOLOv3 detector with an ASFF neck on a generated (or the user's) VOC data set, evaluates
 * mAP@0.5 and mAP@[.5:.95] on the held-out split after every epoch, and writes metrics, plots, annotated images,
 * ASFF fusion heat maps and checkpoints to the output folder.
 */
@Command(name = "yolov3-asff", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Trains and evaluates a YOLOv3 detector with an ASFF neck (dl4j-cnn-plugins AsffVertex).")
public final class YoloAsff implements Callable<Integer> {
    @Option(names = "--out", description = "Output folder (default ${DEFAULT-VALUE}).")
    Path out = Path.of("target", "yolov3-asff");

    @Option(names = "--data", description = "A VOC data set to use instead of the generated one: DIR/train and DIR/val, "
            + "each with JPEGImages/ and Annotations/.")
    Path data;

    @Option(names = "--image-size", description = "Network input size, a multiple of 32 (default ${DEFAULT-VALUE}).")
    int imageSize = 128;

    @Option(names = "--width", description = "Backbone width: channels of the first convolution (default ${DEFAULT-VALUE}).")
    int width = 8;

    @Option(names = "--epochs", description = "Training epochs (default ${DEFAULT-VALUE}).")
    int epochs = 10;

    @Option(names = "--batch", description = "Images per minibatch (default ${DEFAULT-VALUE}).")
    int batch = 16;

    @Option(names = "--lr", description = "Peak Adam learning rate: linear warm-up, then linear decay to 5% over the "
            + "run's --epochs (default ${DEFAULT-VALUE}).")
    double learningRate = 4e-3;

    @Option(names = "--train-images", description = "Generated training images (default ${DEFAULT-VALUE}).")
    int trainImages = 1600;

    @Option(names = "--val-images", description = "Generated held-out images (default ${DEFAULT-VALUE}).")
    int valImages = 96;

    @Option(names = "--max-iterations", description = "Stop each epoch after this many minibatches (0 = all; for quick tries).")
    int maxIterations = 0;

    @Option(names = "--seed", description = "Random seed: data, initialisation and order (default ${DEFAULT-VALUE}).")
    long seed = 42;

    @Option(names = "--no-asff", description = "The same detector with the plain pyramid (no AsffVertex).")
    boolean noAsff;

    @Option(names = "--resume", description = "Continue from the checkpoint in the output folder.")
    boolean resume;

    @Option(names = "--workers", description = "Data-parallel workers (ParallelWrapper); 1 = plain fit (default ${DEFAULT-VALUE}).")
    int workers = 1;

    @Option(names = "--predict", arity = "1..*", description = "Run the saved model (--model) on these images and write them annotated.")
    List<Path> predict;

    @Option(names = "--model", description = "Model for --predict (default: OUT/model.zip).")
    Path model;

    @Option(names = "--score-threshold", description = "Minimum score of a drawn detection (default ${DEFAULT-VALUE}).")
    double drawThreshold = 0.3;

    static final double EVAL_SCORE_THRESHOLD = 0.01;
    static final double NMS_IOU = 0.45;
    static final int MAX_PER_IMAGE = 100;

    private final Object trainLock = new Object();
    private long parameters;
    private volatile boolean stopping;
    /** Minibatches of the current epoch already trained (for a checkpoint on Ctrl-C) and to skip on resume. */
    private int batchesDone;
    private int skipBatches;

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(new CommandLine(new YoloAsff()).execute(args));
    }

    /** The last result line, also returned to tests. */
    String finalLine;
    /** Per-epoch metrics of this run (and of resumed epochs). */
    final List<Map<String, Object>> history = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        System.setProperty("java.awt.headless", "true");
        if (predict != null) {
            return predictImages();
        }
        if (workers < 1) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--workers must be at least 1; got " + workers);
        }
        Files.createDirectories(out);
        System.out.println("output folder: " + out.toAbsolutePath());
        Path dataDir = data != null ? data : out.resolve("data");
        if (data == null) {
            generateIfNeeded(dataDir);
        } else {
            System.out.println("data: " + data.toAbsolutePath());
        }
        long t0 = System.nanoTime();
        VocDataset train = VocDataset.load(dataDir.resolve("train"), imageSize, null);
        VocDataset val = VocDataset.load(dataDir.resolve("val"), imageSize, train.classes());
        System.out.printf(Locale.ROOT, "read %d training and %d held-out images through DataVec (%d objects, classes %s) in %.1f s%n",
                train.items().size(), val.items().size(), train.groundTruth().size() + val.groundTruth().size(),
                train.classes(), (System.nanoTime() - t0) / 1e9);

        Nd4j.getRandom().setSeed(seed);
        int startEpoch = 0;
        ComputationGraph net;
        Path checkpoint = out.resolve("checkpoint.zip");
        Path state = out.resolve("checkpoint.json");
        if (resume) {
            if (!Files.isRegularFile(checkpoint) || !Files.isRegularFile(state)) {
                throw new IllegalArgumentException("--resume: no checkpoint in " + out.toAbsolutePath());
            }
            net = ModelSerializer.restoreComputationGraph(checkpoint.toFile(), true);
            Map<String, Object> s = RunFiles.readJson(state);
            startEpoch = ((Number) s.get("epochs_done")).intValue();
            skipBatches = ((Number) s.getOrDefault("batches_done", 0)).intValue();
            @SuppressWarnings("unchecked") List<Map<String, Object>> h = (List<Map<String, Object>>) s.get("history");
            history.addAll(h);
            if (((Number) s.get("seed")).longValue() != seed) {
                System.out.println("note: resuming with --seed " + seed + " but the checkpoint was made with seed " + s.get("seed"));
            }
            System.out.println("resumed after epoch " + startEpoch + (skipBatches > 0 ? " and " + skipBatches + " minibatches of the next"
                    : "") + " from " + checkpoint.toAbsolutePath());
        } else {
            int perEpoch = (train.items().size() + batch - 1) / batch;
            if (maxIterations > 0) {
                perEpoch = Math.min(perEpoch, maxIterations);
            }
            net = YoloModel.build(imageSize, width, train.classes().size(), !noAsff, learningRate, epochs * perEpoch, seed);
        }
        parameters = net.params().length();
        NativeHelpers.install(net);   // DL4J's conv and BatchNorm layers on libnd4j's native ops (oneDNN when present)
        System.out.printf(Locale.ROOT, "model: YOLOv3 %s, width %d, %d parameters, input %dx%d, %d classes%n",
                noAsff ? "with the plain pyramid (--no-asff)" : "with ASFF at each level", width, parameters,
                imageSize, imageSize, train.classes().size());

        YoloBatches batches = new YoloBatches(train, Anchors.forImageSize(imageSize), batch, true, true, seed, 0);
        final ComputationGraph trained = net;
        final int[] epochNow = {startEpoch};
        Thread hook = new Thread(() -> {
            stopping = true;
            synchronized (trainLock) {
                if (epochNow[0] < epochs && workers == 1) {
                    writeCheckpoint(trained, epochNow[0], batchesDone, train.classes());
                    System.out.println("\ninterrupted: checkpoint after epoch " + epochNow[0] + " and " + batchesDone
                            + " minibatches written to " + checkpoint.toAbsolutePath() + "; continue with --resume");
                }
            }
        }, "checkpoint-on-exit");
        Runtime.getRuntime().addShutdownHook(hook);
        ParallelWrapper wrapper = workers > 1 ? new ParallelWrapper.Builder<>(net).workers(workers).prefetchBuffer(2)
                .averagingFrequency(2).trainingMode(ParallelWrapper.TrainingMode.AVERAGING).build() : null;
        try {
            for (int epoch = startEpoch; epoch < epochs && !stopping; epoch++) {
                batches.setEpoch(epoch);
                for (int i = 0; i < skipBatches && batches.hasNext(); i++) {
                    batches.next();   // done before the interruption: same order and flips as an uninterrupted run
                }
                batchesDone = skipBatches;
                skipBatches = 0;
                Map<String, Object> m = trainEpoch(net, wrapper, batches, epoch);
                if (stopping) {
                    break;
                }
                long e0 = System.nanoTime();
                double[] maps = evaluate(net, val, null);
                double evalSeconds = (System.nanoTime() - e0) / 1e9;
                m.put("map50", maps[0]);
                m.put("map50_95", maps[1]);
                m.put("seconds", ((Number) m.get("seconds")).doubleValue() + evalSeconds);
                history.add(m);
                synchronized (trainLock) {
                    epochNow[0] = epoch + 1;
                    batchesDone = 0;
                    writeCheckpoint(net, epoch + 1, 0, train.classes());
                }
                writeMetrics(train.classes());
                plots();
                System.out.printf(Locale.ROOT, "epoch %d/%d: loss %.3f, held-out mAP@0.5 %.3f, mAP@[.5:.95] %.3f, %.1f images/s, %.0f s%n",
                        epoch + 1, epochs, m.get("loss"), maps[0], maps[1], m.get("images_per_second"), m.get("seconds"));
            }
        } finally {
            if (wrapper != null) {
                wrapper.shutdown();
            }
        }
        if (stopping) {
            return 130;
        }
        Runtime.getRuntime().removeShutdownHook(hook);
        RunFiles.atomically(out.resolve("model.zip"), tmp -> ModelSerializer.writeModel(net, tmp.toFile(), false));
        double[] maps = evaluate(net, val, out);
        writeMetrics(train.classes());
        plots();
        if (!noAsff) {
            asffHeatMaps(net, val);
        }
        finalLine = String.format(Locale.ROOT, "final held-out mAP@0.5 = %.3f, mAP@[.5:.95] = %.3f after %d epochs; outputs in %s",
                maps[0], maps[1], epochs, out.toAbsolutePath());
        System.out.println(finalLine);
        return 0;
    }

    private void generateIfNeeded(Path dir) throws IOException {
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("image_size", imageSize);
        spec.put("train_images", trainImages);
        spec.put("val_images", valImages);
        spec.put("seed", seed);
        spec.put("generator", "SyntheticVoc v" + SyntheticVoc.VERSION);
        Path marker = dir.resolve("generated.json");
        if (Files.isRegularFile(marker) && RunFiles.readJson(marker).equals(RunFiles.JSON.readValue(RunFiles.JSON.writeValueAsString(spec), Map.class))) {
            System.out.println("data: reusing the generated data set in " + dir.toAbsolutePath());
            return;
        }
        long t0 = System.nanoTime();
        if (Files.exists(dir)) {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        new SyntheticVoc(imageSize, 2, 6).write(dir, trainImages, valImages, seed);
        RunFiles.writeJson(marker, spec);
        System.out.printf(Locale.ROOT, "data: generated %d training and %d held-out images (VOC layout) in %s in %.1f s%n",
                trainImages, valImages, dir.toAbsolutePath(), (System.nanoTime() - t0) / 1e9);
    }

    /** Accumulates the score of every iteration (also from ParallelWrapper's workers). */
    private static final class LossMeter extends BaseTrainingListener {
        double sum;
        int count;
        ProgressBar bar;
        int batch;

        @Override
        public synchronized void iterationDone(Model model, int iteration, int epoch) {
            sum += model.score();
            count++;
            if (bar != null) {
                bar.stepBy(batch);
                bar.setExtraMessage(String.format(Locale.ROOT, " loss %.3f", sum / count));
            }
        }
    }

    private Map<String, Object> trainEpoch(ComputationGraph net, ParallelWrapper wrapper, YoloBatches batches, int epoch) {
        int iterations = maxIterations > 0 ? Math.min(maxIterations, batches.numBatches()) : batches.numBatches();
        int images = Math.max(0, Math.min(batches.numImages(), iterations * batch) - batchesDone * batch);
        LossMeter meter = new LossMeter();
        meter.batch = batch;
        long t0 = System.nanoTime();
        try (ProgressBar bar = new ProgressBarBuilder().setTaskName(String.format(Locale.ROOT, "epoch %d/%d", epoch + 1, epochs))
                .setInitialMax(images).setUnit(" img", 1).showSpeed().setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(1000).setMaxRenderedLength(110).build()) {
            meter.bar = bar;
            if (wrapper != null) {
                wrapper.setListeners(meter);
                batches.maxBatches(iterations);
                wrapper.fit(batches);
            } else {
                net.setListeners(meter);
                for (int i = batchesDone; i < iterations && batches.hasNext() && !stopping; i++) {
                    MultiDataSet mds = batches.next();
                    synchronized (trainLock) {
                        if (stopping) {
                            break;
                        }
                        net.fit(mds);
                        batchesDone++;
                    }
                }
                net.setListeners();
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epoch", epoch + 1);
        m.put("loss", meter.count == 0 ? Double.NaN : meter.sum / meter.count);
        m.put("images_per_second", images / seconds);
        m.put("seconds", seconds);
        m.put("train_seconds", seconds);
        return m;
    }

    /** mAP@0.5 and mAP@[.5:.95] on {@code val}; with {@code drawTo}, also writes annotated held-out images there. */
    double[] evaluate(ComputationGraph net, VocDataset val, Path drawTo) {
        List<Detection> dets = detect(net, val);
        List<GroundTruth> gts = val.groundTruth();
        int c = val.classes().size();
        double[] maps = {MeanAveragePrecision.map(dets, gts, c, 0.5), MeanAveragePrecision.mapCoco(dets, gts, c)};
        if (drawTo != null) {
            int n = Math.min(12, val.items().size());
            for (int i = 0; i < n; i++) {
                final int img = i;
                VocDataset.Item it = val.items().get(i);
                List<Detection> mine = dets.stream().filter(d -> d.image() == img && d.score() >= drawThreshold).toList();
                Pictures.write(drawTo.resolve("heldout").resolve(it.file().replaceAll("\\.[^.]+$", "") + ".png"),
                        Pictures.annotate(Pictures.image(it.chw(), val.size()), 3, it.boxes(), mine, val.classes()));
            }
        }
        return maps;
    }

    static List<Detection> detect(ComputationGraph net, VocDataset val) {
        List<Detection> dets = new ArrayList<>();
        int bs = 32;
        for (int from = 0; from < val.items().size(); from += bs) {
            int n = Math.min(bs, val.items().size() - from);
            INDArray[] outs = net.output(false, YoloBatches.features(val, from, n));
            dets.addAll(YoloDecoder.decodeAll(outs, val.classes().size(), EVAL_SCORE_THRESHOLD, NMS_IOU, MAX_PER_IMAGE, from));
        }
        return dets;
    }

    private void writeCheckpoint(ComputationGraph net, int epochsDone, int batchesDoneInNext, List<String> classes) {
        RunFiles.atomically(out.resolve("checkpoint.zip"), tmp -> ModelSerializer.writeModel(net, tmp.toFile(), true));
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("epochs_done", epochsDone);
        s.put("batches_done", batchesDoneInNext);
        s.put("seed", seed);
        s.put("classes", classes);
        s.put("configuration", configuration());
        s.put("history", history.subList(0, Math.min(history.size(), epochsDone)));
        RunFiles.writeJson(out.resolve("checkpoint.json"), s);
    }

    Map<String, Object> configuration() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("data", data == null ? "generated" : data.toAbsolutePath().toString());
        c.put("image_size", imageSize);
        c.put("width", width);
        c.put("asff", !noAsff);
        c.put("epochs", epochs);
        c.put("batch", batch);
        c.put("learning_rate", learningRate);
        c.put("train_images", trainImages);
        c.put("val_images", valImages);
        c.put("max_iterations", maxIterations);
        c.put("workers", workers);
        c.put("anchors_pixels", Anchors.forImageSize(imageSize).pixels());
        return c;
    }

    private void writeMetrics(List<String> classes) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("seed", seed);
        m.put("configuration", configuration());
        m.put("parameters", parameters);
        m.put("classes", classes);
        m.put("epochs", history);
        RunFiles.writeJson(out.resolve("metrics.json"), m);
    }

    private void plots() {
        int n = history.size();
        double[] e = new double[n], loss = new double[n], m50 = new double[n], m5095 = new double[n];
        for (int i = 0; i < n; i++) {
            Map<String, Object> h = history.get(i);
            e[i] = ((Number) h.get("epoch")).doubleValue();
            loss[i] = ((Number) h.get("loss")).doubleValue();
            m50[i] = ((Number) h.get("map50")).doubleValue();
            m5095[i] = ((Number) h.get("map50_95")).doubleValue();
        }
        if (n == 0) {
            return;
        }
        Pictures.plot(out.resolve("loss.png"), "training loss", "loss (sum of the three YOLO layers)", e,
                new String[]{"loss"}, new double[][]{loss});
        Pictures.plot(out.resolve("map.png"), "held-out mAP", "mAP", e, new String[]{"mAP@0.5", "mAP@[.5:.95]"},
                new double[][]{m50, m5095});
    }

    void asffHeatMaps(ComputationGraph net, VocDataset val) {
        int n = Math.min(4, val.items().size());
        net.output(false, YoloBatches.features(val, 0, n));
        List<BufferedImage> imgs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            imgs.add(Pictures.image(val.items().get(i).chw(), val.size()));
        }
        String[] stride = {"32", "16", "8"};
        for (int level = 0; level < 3; level++) {
            INDArray w = AsffVertex.fusionWeights(net, YoloModel.ASFF[level]);
            Pictures.write(out.resolve("asff").resolve("level" + level + ".png"), Pictures.fusionHeatMaps(imgs, w, 128,
                    "ASFF level " + level + " (stride " + stride[level] + "): per-pixel weight of each input level"));
        }
    }

    private int predictImages() throws IOException {
        Path modelFile = model != null ? model : out.resolve("model.zip");
        Path meta = modelFile.resolveSibling("checkpoint.json");
        if (!Files.isRegularFile(modelFile)) {
            throw new IllegalArgumentException("--predict: no model at " + modelFile.toAbsolutePath() + " (train first, or give --model)");
        }
        List<String> classes;
        int size;
        if (Files.isRegularFile(meta)) {
            Map<String, Object> s = RunFiles.readJson(meta);
            @SuppressWarnings("unchecked") List<String> c = (List<String>) s.get("classes");
            classes = c;
            @SuppressWarnings("unchecked") Map<String, Object> conf = (Map<String, Object>) s.get("configuration");
            size = ((Number) conf.get("image_size")).intValue();
        } else {
            classes = SyntheticVoc.CLASSES;
            size = imageSize;
        }
        ComputationGraph net = ModelSerializer.restoreComputationGraph(modelFile.toFile(), false);
        NativeHelpers.install(net);
        NativeImageLoader loader = new NativeImageLoader(size, size, 3);
        Path dir = out.resolve("predicted");
        for (Path p : predict) {
            File f = p.toFile();
            if (!f.isFile()) {
                throw new IllegalArgumentException("--predict: no such image " + p.toAbsolutePath());
            }
            INDArray bgr = loader.asMatrix(f).castTo(DataType.FLOAT);
            INDArray rgb = Nd4j.concat(1, bgr.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(2, 3)),
                    bgr.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 2)),
                    bgr.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 1))).divi(255);
            INDArray[] outs = net.output(false, rgb);
            List<Detection> dets = YoloDecoder.decodeAll(outs, classes.size(), drawThreshold, NMS_IOU, MAX_PER_IMAGE, 0);
            float[] px = rgb.dup('c').data().asFloat();
            byte[] chw = new byte[px.length];
            for (int i = 0; i < px.length; i++) {
                chw[i] = (byte) Math.round(Math.max(0, Math.min(1, px[i])) * 255);
            }
            Path target = dir.resolve(f.getName().replaceAll("\\.[^.]+$", "") + ".png");
            Pictures.write(target, Pictures.annotate(Pictures.image(chw, size), 3, List.of(), dets, classes));
            System.out.printf(Locale.ROOT, "%s: %d objects -> %s%n", p, dets.size(), target.toAbsolutePath());
        }
        System.out.println("annotated images in " + dir.toAbsolutePath());
        return 0;
    }
}
