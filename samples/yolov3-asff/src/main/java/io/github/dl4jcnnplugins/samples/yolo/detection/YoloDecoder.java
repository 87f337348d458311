package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns the activated outputs of the three {@link Yolo3OutputLayer}s into pixel-space detections.
 *
 * <p>Each output is {@code [N, B*(5+C), H, W]} after the layer's activation: per prior b the channels
 * {@code b*(5+C) + 0..1} are the centre offsets within the cell (sigmoid, 0..1), {@code 2..3} the width and height
 * in grid units (prior x exp), {@code 4} the objectness (sigmoid) and {@code 5..} the class probabilities: one
 * independent sigmoid per class, as in YOLOv3 (Redmon &amp; Farhadi 2018, arXiv:1804.02767), so they need not sum
 * to 1. (DL4J's {@code Yolo2OutputLayer} has the same layout with a softmax over the classes; this decoder reads
 * both.) A box is emitted for every class whose score objectness x probability reaches {@code scoreThreshold};
 * the result then goes through {@link Nms}.
 */
public final class YoloDecoder {
    private YoloDecoder() {
    }

    /**
     * Detections of one scale.
     *
     * @param out         activated output {@code [N, B*(5+C), H, W]}
     * @param stride      pixels per grid cell
     * @param numClasses  C
     * @param imageOffset added to the example index (for batches of a larger set)
     */
    public static List<Detection> decode(INDArray out, int stride, int numClasses, double scoreThreshold, int imageOffset) {
        long[] s = out.shape();
        int n = (int) s[0], ch = (int) s[1], h = (int) s[2], w = (int) s[3];
        int per = 5 + numClasses;
        if (ch % per != 0) {
            throw new IllegalArgumentException("output has " + ch + " channels, not a multiple of 5 + " + numClasses);
        }
        int boxes = ch / per;
        float[] v = out.castTo(DataType.FLOAT).dup('c').data().asFloat();
        int plane = h * w;
        List<Detection> dets = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int base = i * ch * plane;
            for (int b = 0; b < boxes; b++) {
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) {
                        int cell = y * w + x;
                        int o = base + b * per * plane + cell;
                        double conf = v[o + 4 * plane];
                        if (conf < scoreThreshold) {
                            continue;
                        }
                        double cx = (x + v[o]) * stride, cy = (y + v[o + plane]) * stride;
                        double bw = v[o + 2 * plane] * stride, bh = v[o + 3 * plane] * stride;
                        Box box = Box.ofCenter(cx, cy, bw, bh);
                        for (int c = 0; c < numClasses; c++) {
                            double score = conf * v[o + (5 + c) * plane];
                            if (score >= scoreThreshold) {
                                dets.add(new Detection(imageOffset + i, c, score, box));
                            }
                        }
                    }
                }
            }
        }
        return dets;
    }

    /** Detections of all scales, after NMS. */
    public static List<Detection> decodeAll(INDArray[] outs, int numClasses, double scoreThreshold, double nmsIou,
                                            int maxPerImage, int imageOffset) {
        List<Detection> all = new ArrayList<>();
        for (int sIdx = 0; sIdx < outs.length; sIdx++) {
            all.addAll(decode(outs[sIdx], Anchors.STRIDES[sIdx], numClasses, scoreThreshold, imageOffset));
        }
        return Nms.apply(all, nmsIou, maxPerImage);
    }
}
