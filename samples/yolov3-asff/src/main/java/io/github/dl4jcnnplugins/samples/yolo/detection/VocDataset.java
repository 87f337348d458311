package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.datavec.api.split.CollectionInputSplit;
import org.datavec.api.writable.NDArrayWritable;
import org.datavec.api.writable.Writable;
import org.datavec.image.recordreader.objdetect.ImageObject;
import org.datavec.image.recordreader.objdetect.ObjectDetectionRecordReader;
import org.datavec.image.recordreader.objdetect.impl.VocLabelProvider;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * A VOC-layout split ({@code ROOT/JPEGImages/*.png|jpg} + {@code ROOT/Annotations/*.xml}) loaded into memory
 * through DataVec's {@link ObjectDetectionRecordReader} and {@link VocLabelProvider}, the path a user's data takes.
 *
 * <p>{@link #validate} checks every annotation up front and reports all problems at once, each naming its file, so
 * a bad file never crashes training mid-epoch. The record reader is run with a grid of one cell per pixel, so its
 * label tensor gives each box back in resized-image pixels (DataVec does the rescaling).
 */
public final class VocDataset {
    private static final List<String> IMAGE_EXTENSIONS = List.of(".png", ".jpg", ".bmp");

    /** One image: CHW bytes (RGB, the size the network sees) and its true boxes in pixels. */
    public record Item(String file, byte[] chw, List<GroundTruth> boxes) {
    }

    private final List<String> classes;
    private final List<Item> items;
    private final int size;

    private VocDataset(List<String> classes, List<Item> items, int size) {
        this.classes = classes;
        this.items = items;
        this.size = size;
    }

    public List<String> classes() {
        return classes;
    }

    public List<Item> items() {
        return items;
    }

    public int size() {
        return size;
    }

    /** The image files of a VOC split, sorted by name. */
    public static List<File> imageFiles(Path root) {
        Path dir = root.resolve("JPEGImages");
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("not a VOC data set: " + dir + " is missing (expected JPEGImages/ and Annotations/ under "
                    + root + ")");
        }
        try (Stream<Path> s = Files.list(dir)) {
            List<File> files = s.filter(Files::isRegularFile).map(Path::toFile).sorted().toList();
            if (files.isEmpty()) {
                throw new IllegalArgumentException("no images in " + dir);
            }
            return files;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Checks every image of the split has a readable annotation that DataVec's VocLabelProvider parses to the same
     * objects as an XML parser, with integer corners inside the image and a known class; returns the sorted class
     * names found. Throws one {@link IllegalArgumentException} listing every problem (file by file).
     */
    public static List<String> validate(Path root) {
        List<String> problems = new ArrayList<>();
        TreeSet<String> names = new TreeSet<>();
        VocLabelProvider provider = new VocLabelProvider(root.toString());
        DocumentBuilder db;
        try {
            db = DocumentBuilderFactory.newInstance().newDocumentBuilder();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        for (File img : imageFiles(root)) {
            String name = img.getName();
            String lower = name.toLowerCase(Locale.ROOT);
            if (IMAGE_EXTENSIONS.stream().noneMatch(lower::endsWith)) {
                problems.add(img + ": unsupported image extension (use .png, .jpg or .bmp; VocLabelProvider drops the last 4"
                        + " characters of the name to find the annotation, so .jpeg does not work)");
                continue;
            }
            File xml = root.resolve("Annotations").resolve(name.substring(0, name.length() - 4) + ".xml").toFile();
            if (!xml.isFile()) {
                problems.add(xml + ": missing annotation for image " + img.getName());
                continue;
            }
            List<int[]> boxes = new ArrayList<>();
            List<String> labels = new ArrayList<>();
            try {
                Document doc = db.parse(xml);
                NodeList objs = doc.getElementsByTagName("object");
                int w = intOrDefault(doc.getDocumentElement(), "width", -1);
                int h = intOrDefault(doc.getDocumentElement(), "height", -1);
                for (int i = 0; i < objs.getLength(); i++) {
                    Element o = (Element) objs.item(i);
                    String label = text(o, "name");
                    int[] b = {intValue(o, "xmin"), intValue(o, "ymin"), intValue(o, "xmax"), intValue(o, "ymax")};
                    if (label.isBlank()) {
                        throw new IllegalArgumentException("object " + i + " has an empty <name>");
                    }
                    if (b[0] >= b[2] || b[1] >= b[3] || b[0] < 0 || b[1] < 0 || (w > 0 && b[2] > w) || (h > 0 && b[3] > h)) {
                        throw new IllegalArgumentException("object " + i + " (" + label + ") has an empty or out-of-image box "
                                + "xmin=" + b[0] + " ymin=" + b[1] + " xmax=" + b[2] + " ymax=" + b[3]
                                + (w > 0 ? " in a " + w + "x" + h + " image" : ""));
                    }
                    boxes.add(b);
                    labels.add(label);
                }
            } catch (IllegalArgumentException e) {
                problems.add(xml + ": " + e.getMessage());
                continue;
            } catch (Exception e) {
                problems.add(xml + ": not readable XML (" + e.getMessage() + ")");
                continue;
            }
            try {
                List<ImageObject> seen = provider.getImageObjectsForPath(img.getPath());
                boolean same = seen.size() == boxes.size();
                for (int i = 0; same && i < seen.size(); i++) {
                    ImageObject s = seen.get(i);
                    int[] b = boxes.get(i);
                    same = s.getLabel().equals(labels.get(i)) && s.getX1() == b[0] && s.getY1() == b[1] && s.getX2() == b[2]
                            && s.getY2() == b[3];
                }
                if (!same) {
                    problems.add(xml + ": DataVec's VocLabelProvider reads it differently from an XML parser; put every tag"
                            + " (<object>, <name>, <xmin>, ...) on its own line");
                    continue;
                }
            } catch (RuntimeException e) {
                problems.add(xml + ": DataVec's VocLabelProvider cannot read it (" + e + "); every tag must be on its own"
                        + " line and coordinates must be integers");
                continue;
            }
            names.addAll(labels);
        }
        if (!problems.isEmpty()) {
            StringBuilder m = new StringBuilder(problems.size() + " problem(s) in the VOC data set " + root + ":");
            problems.stream().limit(20).forEach(p -> m.append("\n  ").append(p));
            if (problems.size() > 20) {
                m.append("\n  ... and ").append(problems.size() - 20).append(" more");
            }
            throw new IllegalArgumentException(m.toString());
        }
        return new ArrayList<>(names);
    }

    private static String text(Element e, String tag) {
        NodeList l = e.getElementsByTagName(tag);
        if (l.getLength() == 0) {
            throw new IllegalArgumentException("<" + tag + "> missing in an <object>");
        }
        return l.item(0).getTextContent().trim();
    }

    private static int intValue(Element e, String tag) {
        String t = text(e, tag);
        try {
            return Integer.parseInt(t);
        } catch (NumberFormatException x) {
            throw new IllegalArgumentException("<" + tag + "> must be an integer (DataVec's VocLabelProvider needs integers); got '"
                    + t + "'");
        }
    }

    private static int intOrDefault(Element e, String tag, int def) {
        NodeList l = e.getElementsByTagName(tag);
        try {
            return l.getLength() == 0 ? def : Integer.parseInt(l.item(0).getTextContent().trim());
        } catch (NumberFormatException x) {
            return def;
        }
    }

    /**
     * Validates, then loads the split at {@code size x size} through ObjectDetectionRecordReader.
     *
     * @param classes the class list to use (e.g. the training split's), or null for the classes found here
     */
    public static VocDataset load(Path root, int size, List<String> classes) {
        List<String> found = validate(root);
        List<String> cls = classes == null ? found : classes;
        for (String f : found) {
            if (!cls.contains(f)) {
                throw new IllegalArgumentException("class '" + f + "' in " + root + " is not among the training classes " + cls);
            }
        }
        List<File> files = imageFiles(root);
        List<URI> uris = files.stream().map(File::toURI).toList();
        ObjectDetectionRecordReader rr = new ObjectDetectionRecordReader(size, size, 3, size, size, new VocLabelProvider(root.toString()));
        try {
            rr.initialize(new CollectionInputSplit(uris));
        } catch (IOException e) {
            throw new UncheckedIOException("could not open " + root, e);
        }
        rr.setLabels(new ArrayList<>(cls));
        int c = cls.size();
        List<Item> items = new ArrayList<>();
        int idx = 0;
        while (rr.hasNext()) {
            List<Writable> rec = rr.next();
            INDArray img = ((NDArrayWritable) rec.get(0)).get();
            INDArray lab = ((NDArrayWritable) rec.get(1)).get().castTo(DataType.FLOAT).dup('c');
            float[] px = img.castTo(DataType.FLOAT).dup('c').data().asFloat();
            byte[] chw = new byte[px.length];
            for (int i = 0; i < px.length; i++) {
                chw[i] = (byte) Math.max(0, Math.min(255, Math.round(px[i])));
            }
            // BGR (OpenCV) -> RGB, so that images drawn from the bytes look right
            int plane = size * size;
            for (int i = 0; i < plane; i++) {
                byte t = chw[i];
                chw[i] = chw[2 * plane + i];
                chw[2 * plane + i] = t;
            }
            float[] l = lab.data().asFloat();
            List<GroundTruth> boxes = new ArrayList<>();
            for (int cell = 0; cell < plane; cell++) {
                for (int k = 0; k < c; k++) {
                    if (l[(4 + k) * plane + cell] > 0.5f) {
                        boxes.add(new GroundTruth(idx, k, new Box(l[cell], l[plane + cell], l[2 * plane + cell], l[3 * plane + cell])));
                    }
                }
            }
            items.add(new Item(files.get(idx).getName(), chw, boxes));
            idx++;
        }
        return new VocDataset(List.copyOf(cls), items, size);
    }

    /** All true boxes of the split, image indices as in {@link #items()}. */
    public List<GroundTruth> groundTruth() {
        List<GroundTruth> all = new ArrayList<>();
        items.forEach(i -> all.addAll(i.boxes()));
        return all;
    }
}
