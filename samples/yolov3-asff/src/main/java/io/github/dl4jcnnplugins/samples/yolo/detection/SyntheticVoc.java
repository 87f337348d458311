package io.github.dl4jcnnplugins.samples.yolo.detection;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.Polygon;
import java.awt.RenderingHints;
import java.awt.Shape;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * A seeded generator of a small detection data set in VOC layout: shapes of four classes ({@link #CLASSES}),
 * filled or outlined, in many colours and sizes, several per image, over textured backgrounds.
 *
 * <p>Object sizes are drawn from three bands (about 8-20, 20-44 and 44-100 pixels at 128 x 128) in equal
 * proportion, so each of the three detection scales (strides 8, 16, 32) gets its share of objects.
 *
 * <p>Layout written for each split ({@code train}, {@code val}):
 * <pre>
 *   DIR/split/JPEGImages/000000.png         (PNG: lossless, small shapes stay sharp)
 *   DIR/split/Annotations/000000.xml        (integer pixel corners, one tag per line, as VocLabelProvider reads)
 * </pre>
 */
public final class SyntheticVoc {
    /** The class names (alphabetical, the order DataVec's ObjectDetectionRecordReader gives them). */
    public static final List<String> CLASSES = List.of("circle", "cross", "square", "triangle");

    /** One generated object (class name and integer box). */
    public record Obj(String name, int xmin, int ymin, int xmax, int ymax) {
    }

    /** One generated image with its objects. */
    public record Sample(BufferedImage image, List<Obj> objects) {
    }

    private final int size;
    private final int minObjects;
    private final int maxObjects;

    public SyntheticVoc(int size, int minObjects, int maxObjects) {
        if (size < 32) {
            throw new IllegalArgumentException("image size must be at least 32; got " + size);
        }
        if (minObjects < 1 || maxObjects < minObjects) {
            throw new IllegalArgumentException("need 1 <= minObjects <= maxObjects; got " + minObjects + ", " + maxObjects);
        }
        this.size = size;
        this.minObjects = minObjects;
        this.maxObjects = maxObjects;
    }

    /** Writes {@code trainCount} and {@code valCount} images to {@code dir/train} and {@code dir/val}. */
    public void write(Path dir, int trainCount, int valCount, long seed) {
        writeSplit(dir.resolve("train"), trainCount, new Random(seed));
        writeSplit(dir.resolve("val"), valCount, new Random(seed ^ 0x5DEECE66DL));
    }

    public void writeSplit(Path root, int count, Random rnd) {
        try {
            Path images = Files.createDirectories(root.resolve("JPEGImages"));
            Path annotations = Files.createDirectories(root.resolve("Annotations"));
            for (int i = 0; i < count; i++) {
                String id = String.format(Locale.ROOT, "%06d", i);
                Sample s = sample(rnd);
                ImageIO.write(s.image(), "png", images.resolve(id + ".png").toFile());
                Files.writeString(annotations.resolve(id + ".xml"), vocXml(id + ".png", size, size, s.objects()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the synthetic data set to " + root, e);
        }
    }

    /** The VOC XML of one image: every tag on its own line, integer coordinates. */
    public static String vocXml(String filename, int width, int height, List<Obj> objects) {
        StringBuilder x = new StringBuilder();
        x.append("<annotation>\n");
        x.append("  <folder>JPEGImages</folder>\n");
        x.append("  <filename>").append(filename).append("</filename>\n");
        x.append("  <size>\n");
        x.append("    <width>").append(width).append("</width>\n");
        x.append("    <height>").append(height).append("</height>\n");
        x.append("    <depth>3</depth>\n");
        x.append("  </size>\n");
        for (Obj o : objects) {
            x.append("  <object>\n");
            x.append("    <name>").append(o.name()).append("</name>\n");
            x.append("    <difficult>0</difficult>\n");
            x.append("    <bndbox>\n");
            x.append("      <xmin>").append(o.xmin()).append("</xmin>\n");
            x.append("      <ymin>").append(o.ymin()).append("</ymin>\n");
            x.append("      <xmax>").append(o.xmax()).append("</xmax>\n");
            x.append("      <ymax>").append(o.ymax()).append("</ymax>\n");
            x.append("    </bndbox>\n");
            x.append("  </object>\n");
        }
        x.append("</annotation>\n");
        return x.toString();
    }

    /** One image and its objects, drawn from {@code rnd}. */
    public Sample sample(Random rnd) {
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_3BYTE_BGR);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        background(g, rnd);
        double scale = size / 128.0;
        double[][] bands = {{12, 24}, {24, 48}, {48, 96}};
        int n = minObjects + rnd.nextInt(maxObjects - minObjects + 1);
        List<Obj> objs = new ArrayList<>();
        List<Box> placed = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            double[] band = bands[rnd.nextInt(3)];
            for (int attempt = 0; attempt < 40; attempt++) {
                double d = scale * (band[0] + rnd.nextDouble() * (band[1] - band[0]));
                double aspect = 0.75 + rnd.nextDouble() * 0.5;
                double w = d * Math.sqrt(aspect), h = d / Math.sqrt(aspect);
                if (w >= size - 2 || h >= size - 2) {
                    continue;
                }
                double x = 1 + rnd.nextDouble() * (size - 2 - w), y = 1 + rnd.nextDouble() * (size - 2 - h);
                Box b = new Box(x, y, x + w, y + h);
                boolean clash = false;
                for (Box p : placed) {
                    if (p.iou(b) > 0.05 || contains(p, b) || contains(b, p)) {
                        clash = true;
                        break;
                    }
                }
                if (clash) {
                    continue;
                }
                int cls = rnd.nextInt(CLASSES.size());
                Shape shape = shape(CLASSES.get(cls), x, y, w, h);
                Color c = Color.getHSBColor(rnd.nextFloat(), 0.65f + 0.35f * rnd.nextFloat(), 0.75f + 0.25f * rnd.nextFloat());
                g.setColor(c);
                if (rnd.nextDouble() < 0.6) {
                    g.fill(shape);
                } else {
                    g.setStroke(new BasicStroke((float) Math.max(2, d / 8)));
                    g.draw(shape);
                }
                placed.add(b);
                objs.add(new Obj(CLASSES.get(cls), (int) Math.floor(x), (int) Math.floor(y),
                        Math.min(size - 1, (int) Math.ceil(x + w)), Math.min(size - 1, (int) Math.ceil(y + h))));
                break;
            }
        }
        g.dispose();
        noise(img, rnd);
        return new Sample(img, objs);
    }

    private static boolean contains(Box outer, Box inner) {
        return inner.x1() >= outer.x1() && inner.x2() <= outer.x2() && inner.y1() >= outer.y1() && inner.y2() <= outer.y2();
    }

    /** The outline of a shape filling the box {@code (x, y, w, h)}; outlines are drawn inside it. */
    static Shape shape(String name, double x, double y, double w, double h) {
        return switch (name) {
            case "circle" -> new Ellipse2D.Double(x, y, w, h);
            case "square" -> new Rectangle2D.Double(x, y, w, h);
            case "triangle" -> {
                Path2D.Double p = new Path2D.Double();
                p.moveTo(x + w / 2, y);
                p.lineTo(x + w, y + h);
                p.lineTo(x, y + h);
                p.closePath();
                yield p;
            }
            case "cross" -> {
                double tw = w / 3, th = h / 3;
                Path2D.Double p = new Path2D.Double();
                p.append(new Rectangle2D.Double(x + tw, y, tw, h), false);
                p.append(new Rectangle2D.Double(x, y + th, w, th), false);
                yield new java.awt.geom.Area(p);
            }
            default -> throw new IllegalArgumentException("unknown shape " + name);
        };
    }

    /** A muted gradient with low-contrast stripes and blobs: texture the detector has to ignore. */
    private void background(Graphics2D g, Random rnd) {
        Color a = Color.getHSBColor(rnd.nextFloat(), 0.25f * rnd.nextFloat(), 0.3f + 0.5f * rnd.nextFloat());
        Color b = Color.getHSBColor(rnd.nextFloat(), 0.25f * rnd.nextFloat(), 0.3f + 0.5f * rnd.nextFloat());
        g.setPaint(new GradientPaint(0, 0, a, size, size, b));
        g.fillRect(0, 0, size, size);
        int stripes = rnd.nextInt(8);
        for (int i = 0; i < stripes; i++) {
            g.setColor(new Color(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256), 40));
            g.setStroke(new BasicStroke(1 + rnd.nextInt(4)));
            g.drawLine(rnd.nextInt(size), rnd.nextInt(size), rnd.nextInt(size), rnd.nextInt(size));
        }
        int blobs = rnd.nextInt(6);
        for (int i = 0; i < blobs; i++) {
            g.setColor(new Color(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256), 30));
            int r = 5 + rnd.nextInt(size / 3);
            Polygon p = new Polygon();
            int cx = rnd.nextInt(size), cy = rnd.nextInt(size);
            for (int j = 0; j < 7; j++) {
                double t = 2 * Math.PI * j / 7;
                double rr = r * (0.5 + rnd.nextDouble());
                p.addPoint((int) (cx + rr * Math.cos(t)), (int) (cy + rr * Math.sin(t)));
            }
            g.fillPolygon(p);
        }
    }

    private static void noise(BufferedImage img, Random rnd) {
        int amp = 6 + rnd.nextInt(10);
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y);
                int d = rnd.nextInt(2 * amp + 1) - amp;
                int r = clamp(((rgb >> 16) & 255) + d), gg = clamp(((rgb >> 8) & 255) + d), b = clamp((rgb & 255) + d);
                img.setRGB(x, y, (r << 16) | (gg << 8) | b);
            }
        }
    }

    private static int clamp(int v) {
        return Math.max(0, Math.min(255, v));
    }
}
