package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * YOLOv3's nine anchors, three per scale. Scale 0 is stride 8 (finest, anchors 0-2), scale 1 stride 16 (3-5),
 * scale 2 stride 32 (6-8), as the darknet masks {@code [0,1,2] [3,4,5] [6,7,8]}.
 *
 * @param pixels the nine anchors {@code [w, h]} in input pixels, smallest first
 */
public record Anchors(double[][] pixels) {
    public static final int[] STRIDES = {8, 16, 32};
    public static final int PER_SCALE = 3;

    /** Anchors for the synthetic shapes at a 128 x 128 input, scaled to {@code imageSize}. */
    public static Anchors forImageSize(int imageSize) {
        double[][] base = {{9, 12}, {12, 9}, {16, 16}, {22, 30}, {30, 22}, {34, 34}, {48, 64}, {64, 48}, {88, 88}};
        double s = imageSize / 128.0;
        double[][] a = new double[9][];
        for (int i = 0; i < 9; i++) {
            a[i] = new double[]{base[i][0] * s, base[i][1] * s};
        }
        return new Anchors(a);
    }

    /** Index 0..8 of the anchor whose shape best fits a {@code w x h} box (shape IoU, centres aligned). */
    public int best(double w, double h) {
        return Box.bestShape(w, h, pixels);
    }

    /** The three priors of {@code scale} in grid units of that scale, {@code [3, 2]}, as Yolo3OutputLayer wants. */
    public INDArray priorsGridUnits(int scale) {
        double[][] p = new double[PER_SCALE][];
        for (int i = 0; i < PER_SCALE; i++) {
            double[] a = pixels[scale * PER_SCALE + i];
            p[i] = new double[]{a[0] / STRIDES[scale], a[1] / STRIDES[scale]};
        }
        return Nd4j.create(p).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT);
    }
}
