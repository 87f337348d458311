package io.github.dl4jcnnplugins.samples.yolo.detection;

/**
 * An axis-aligned box in pixels, corners {@code (x1, y1)} (top left) and {@code (x2, y2)} (bottom right).
 */
public record Box(double x1, double y1, double x2, double y2) {

    public static Box ofCenter(double cx, double cy, double w, double h) {
        return new Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2);
    }

    public double width() {
        return Math.max(0, x2 - x1);
    }

    public double height() {
        return Math.max(0, y2 - y1);
    }

    public double area() {
        return width() * height();
    }

    /** Intersection over union; 0 when either box is empty. */
    public double iou(Box o) {
        double iw = Math.min(x2, o.x2) - Math.max(x1, o.x1);
        double ih = Math.min(y2, o.y2) - Math.max(y1, o.y1);
        if (iw <= 0 || ih <= 0) {
            return 0;
        }
        double inter = iw * ih;
        double union = area() + o.area() - inter;
        return union <= 0 ? 0 : inter / union;
    }

    /** IoU of two boxes of the given sizes placed on the same centre (YOLOv3's anchor matching). */
    public static double shapeIou(double w1, double h1, double w2, double h2) {
        double inter = Math.min(w1, w2) * Math.min(h1, h2);
        return inter / (w1 * h1 + w2 * h2 - inter);
    }

    /** Index of the size {@code [w, h]} in {@code sizes} with the best {@link #shapeIou} to {@code w x h} (first on ties). */
    public static int bestShape(double w, double h, double[][] sizes) {
        int best = 0;
        double bestIou = -1;
        for (int i = 0; i < sizes.length; i++) {
            double iou = shapeIou(w, h, sizes[i][0], sizes[i][1]);
            if (iou > bestIou) {
                bestIou = iou;
                best = i;
            }
        }
        return best;
    }

    public Box scale(double sx, double sy) {
        return new Box(x1 * sx, y1 * sy, x2 * sx, y2 * sy);
    }
}
