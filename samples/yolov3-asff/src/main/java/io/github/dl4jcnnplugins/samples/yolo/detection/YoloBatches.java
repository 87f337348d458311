package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.dataset.api.MultiDataSetPreProcessor;
import org.nd4j.linalg.dataset.api.iterator.MultiDataSetIterator;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;

/**
 * Minibatches for the three-scale YOLOv3 graph: features {@code [N, 3, S, S]} in 0..1 and, per scale s (strides
 * 8, 16, 32), the {@link Yolo3OutputLayer} labels (the format of DL4J's Yolo2OutputLayer)
 * {@code [N, 4 + C, S/stride, S/stride]}: corners x1, y1, x2, y2 in grid
 * units of that scale and a one-hot class in the cell holding the box centre.
 *
 * <p>Each true box goes only to the scale owning the anchor that fits it best (shape IoU over all nine
 * anchors), as in YOLOv3. One object per cell and scale can be represented; a later box in an occupied cell is
 * dropped (counted by {@link #droppedBoxes()}).
 *
 * <p>Training order is a seeded shuffle per epoch ({@code seed + epoch}); with {@code flip}, each image is mirrored
 * left-right with probability 1/2 (seeded as well). {@link #setEpoch} positions the iterator for a resumed run.
 */
public final class YoloBatches implements MultiDataSetIterator {
    private final VocDataset data;
    private final Anchors anchors;
    private final int batch;
    private final boolean shuffle;
    private final boolean flip;
    private final long seed;
    private final int limit;
    private int epoch;
    private List<Integer> order;
    private Random augment;
    private int cursor;
    private long dropped;
    private MultiDataSetPreProcessor pre;
    private int maxBatches;
    private int served;

    /**
     * @param limit use only the first {@code limit} images (0 = all)
     */
    public YoloBatches(VocDataset data, Anchors anchors, int batch, boolean shuffle, boolean flip, long seed, int limit) {
        this.data = data;
        this.anchors = anchors;
        this.batch = batch;
        this.shuffle = shuffle;
        this.flip = flip;
        this.seed = seed;
        this.limit = limit <= 0 ? data.items().size() : Math.min(limit, data.items().size());
        setEpoch(0);
    }

    /** Re-positions at the start of epoch {@code e} (0-based): the same order and flips as an uninterrupted run. */
    public void setEpoch(int e) {
        this.epoch = e;
        order = new ArrayList<>();
        for (int i = 0; i < limit; i++) {
            order.add(i);
        }
        if (shuffle) {
            Collections.shuffle(order, new Random(seed * 31 + e));
        }
        augment = new Random(seed * 17 + e);
        cursor = 0;
        served = 0;
    }

    /** Ends each epoch after {@code n} minibatches (0 = no limit). */
    public YoloBatches maxBatches(int n) {
        this.maxBatches = n;
        return this;
    }

    public int epoch() {
        return epoch;
    }

    public int numImages() {
        return limit;
    }

    public int numBatches() {
        return (limit + batch - 1) / batch;
    }

    public long droppedBoxes() {
        return dropped;
    }

    @Override
    public boolean hasNext() {
        return cursor < limit && (maxBatches <= 0 || served < maxBatches);
    }

    @Override
    public MultiDataSet next() {
        return next(batch);
    }

    @Override
    public MultiDataSet next(int num) {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        int n = Math.min(num, limit - cursor);
        List<Integer> idx = order.subList(cursor, cursor + n);
        cursor += n;
        served++;
        boolean[] flips = new boolean[n];
        for (int i = 0; i < n; i++) {
            flips[i] = flip && augment.nextBoolean();
        }
        MultiDataSet m = build(idx, flips);
        if (pre != null) {
            pre.preProcess(m);
        }
        return m;
    }

    /** Features and the three label arrays for the given items. */
    public MultiDataSet build(List<Integer> idx, boolean[] flips) {
        int n = idx.size();
        int s = data.size();
        int c = data.classes().size();
        int plane = s * s;
        float[] x = new float[n * 3 * plane];
        for (int i = 0; i < n; i++) {
            byte[] chw = data.items().get(idx.get(i)).chw();
            int base = i * 3 * plane;
            for (int ch = 0; ch < 3; ch++) {
                for (int r = 0; r < s; r++) {
                    for (int col = 0; col < s; col++) {
                        int src = ch * plane + r * s + (flips[i] ? s - 1 - col : col);
                        x[base + ch * plane + r * s + col] = (chw[src] & 255) / 255f;
                    }
                }
            }
        }
        INDArray features = Nd4j.create(x, new long[]{n, 3, s, s}, 'c');
        INDArray[] labels = new INDArray[3];
        float[][] lab = new float[3][];
        int[] g = new int[3];
        for (int k = 0; k < 3; k++) {
            g[k] = s / Anchors.STRIDES[k];
            lab[k] = new float[n * (4 + c) * g[k] * g[k]];
        }
        for (int i = 0; i < n; i++) {
            for (GroundTruth t : data.items().get(idx.get(i)).boxes()) {
                Box b = t.box();
                if (flips[i]) {
                    b = new Box(s - b.x2(), b.y1(), s - b.x1(), b.y2());
                }
                int k = anchors.best(b.width(), b.height()) / Anchors.PER_SCALE;
                double stride = Anchors.STRIDES[k];
                int gs = g[k];
                int gx = (int) Math.min(gs - 1, Math.max(0, Math.floor((b.x1() + b.x2()) / 2 / stride)));
                int gy = (int) Math.min(gs - 1, Math.max(0, Math.floor((b.y1() + b.y2()) / 2 / stride)));
                int p = gs * gs;
                int base = i * (4 + c) * p + gy * gs + gx;
                boolean occupied = false;
                for (int q = 0; q < c; q++) {
                    occupied |= lab[k][base + (4 + q) * p] != 0;
                }
                if (occupied) {
                    dropped++;
                    continue;
                }
                lab[k][base] = (float) (b.x1() / stride);
                lab[k][base + p] = (float) (b.y1() / stride);
                lab[k][base + 2 * p] = (float) (b.x2() / stride);
                lab[k][base + 3 * p] = (float) (b.y2() / stride);
                lab[k][base + (4 + t.cls()) * p] = 1f;
            }
        }
        for (int k = 0; k < 3; k++) {
            labels[k] = Nd4j.create(lab[k], new long[]{n, 4 + c, g[k], g[k]}, 'c');
        }
        return new org.nd4j.linalg.dataset.MultiDataSet(new INDArray[]{features}, labels);
    }

    /** Features only, for images {@code from .. from + n - 1} in data-set order, no flips (evaluation). */
    public static INDArray features(VocDataset data, int from, int n) {
        List<Integer> idx = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            idx.add(i);
        }
        YoloBatches b = new YoloBatches(data, Anchors.forImageSize(data.size()), n, false, false, 0, 0);
        return b.build(idx, new boolean[n]).getFeatures(0).castTo(DataType.FLOAT);
    }

    @Override
    public void setPreProcessor(MultiDataSetPreProcessor preProcessor) {
        this.pre = preProcessor;
    }

    @Override
    public MultiDataSetPreProcessor getPreProcessor() {
        return pre;
    }

    @Override
    public boolean resetSupported() {
        return true;
    }

    @Override
    public boolean asyncSupported() {
        return true;
    }

    /** Starts the next epoch (new shuffle). */
    @Override
    public void reset() {
        if (served == 0) {
            return;   // not started: keep the current epoch's order
        }
        setEpoch(epoch + 1);
    }
}
