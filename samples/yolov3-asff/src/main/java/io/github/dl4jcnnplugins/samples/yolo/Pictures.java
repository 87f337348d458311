package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.samples.yolo.detection.Box;
import io.github.dl4jcnnplugins.samples.yolo.detection.Detection;
import io.github.dl4jcnnplugins.samples.yolo.detection.GroundTruth;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** The sample's pictures: metric plots (XChart), images with boxes, ASFF fusion-weight heat maps. */
final class Pictures {
    private Pictures() {
    }

    /** A line chart of one or more series over epochs, written as PNG. */
    static void plot(Path file, String title, String yTitle, double[] epochs, String[] names, double[][] series) {
        XYChart chart = new XYChartBuilder().width(640).height(400).title(title).xAxisTitle("epoch").yAxisTitle(yTitle).build();
        for (int i = 0; i < names.length; i++) {
            chart.addSeries(names[i], epochs, series[i]);
        }
        RunFiles.atomically(file, tmp -> BitmapEncoder.saveBitmap(chart, tmp.toString(), BitmapEncoder.BitmapFormat.PNG));
    }

    /** RGB CHW bytes to an image. */
    static BufferedImage image(byte[] chw, int size) {
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        int p = size * size;
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                int i = y * size + x;
                img.setRGB(x, y, ((chw[i] & 255) << 16) | ((chw[p + i] & 255) << 8) | (chw[2 * p + i] & 255));
            }
        }
        return img;
    }

    static BufferedImage scaled(BufferedImage src, int factor) {
        BufferedImage out = new BufferedImage(src.getWidth() * factor, src.getHeight() * factor, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        g.drawImage(src, 0, 0, out.getWidth(), out.getHeight(), null);
        g.dispose();
        return out;
    }

    /**
     * The image scaled by {@code factor}, true boxes in green (thin), predictions in red with class and score.
     */
    static BufferedImage annotate(BufferedImage src, int factor, List<GroundTruth> truth, List<Detection> preds, List<String> classes) {
        BufferedImage out = scaled(src, factor);
        Graphics2D g = out.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 10));
        g.setStroke(new BasicStroke(1.5f));
        g.setColor(new Color(0, 230, 0));
        for (GroundTruth t : truth) {
            rect(g, t.box(), factor);
        }
        g.setStroke(new BasicStroke(2f));
        for (Detection d : preds) {
            g.setColor(Color.RED);
            rect(g, d.box(), factor);
            String label = String.format(Locale.ROOT, "%s %.2f", classes.get(d.cls()), d.score());
            int x = (int) (d.box().x1() * factor), y = (int) (d.box().y1() * factor);
            g.fillRect(x, Math.max(0, y - 12), g.getFontMetrics().stringWidth(label) + 4, 12);
            g.setColor(Color.WHITE);
            g.drawString(label, x + 2, Math.max(10, y - 2));
        }
        g.dispose();
        return out;
    }

    private static void rect(Graphics2D g, Box b, int f) {
        g.drawRect((int) Math.round(b.x1() * f), (int) Math.round(b.y1() * f), (int) Math.round(b.width() * f),
                (int) Math.round(b.height() * f));
    }

    static void write(Path file, BufferedImage img) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        RunFiles.atomically(file, tmp -> ImageIO.write(img, "png", tmp.toFile()));
    }

    /**
     * One row per image: the image, then the fusion weight of each input level (coarsest, middle, finest) as a heat
     * map (0 = dark blue, 1 = yellow) at the fused level's resolution, all scaled to {@code cell} pixels.
     *
     * @param weights {@code [N, 3, H, W]} from {@code AsffVertex.fusionWeights}
     */
    static BufferedImage fusionHeatMaps(List<BufferedImage> images, INDArray weights, int cell, String title) {
        int n = Math.min(images.size(), (int) weights.size(0));
        int h = (int) weights.size(2), w = (int) weights.size(3);
        int top = 34;
        BufferedImage out = new BufferedImage(4 * (cell + 4), top + n * (cell + 4), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, out.getWidth(), out.getHeight());
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        g.drawString(title, 4, 13);
        String[] heads = {"image", "w(level 0, /32)", "w(level 1, /16)", "w(level 2, /8)"};
        for (int c = 0; c < 4; c++) {
            g.drawString(heads[c], c * (cell + 4) + 2, 29);
        }
        float[] v = weights.castTo(DataType.FLOAT).dup('c').data().asFloat();
        for (int i = 0; i < n; i++) {
            int y0 = top + i * (cell + 4);
            g.drawImage(images.get(i), 0, y0, cell, cell, null);
            for (int k = 0; k < 3; k++) {
                BufferedImage hm = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
                for (int yy = 0; yy < h; yy++) {
                    for (int xx = 0; xx < w; xx++) {
                        hm.setRGB(xx, yy, heat(v[((i * 3 + k) * h + yy) * w + xx]));
                    }
                }
                g.drawImage(hm, (k + 1) * (cell + 4), y0, cell, cell, null);
            }
        }
        g.dispose();
        return out;
    }

    /** A blue-to-yellow colour map for 0..1. */
    private static int heat(double t) {
        t = Math.max(0, Math.min(1, t));
        int r = (int) (255 * Math.min(1, 1.6 * t));
        int gr = (int) (255 * t);
        int b = (int) (255 * (1 - t) * 0.8 + 30);
        return (r << 16) | (gr << 8) | Math.min(255, b);
    }
}
