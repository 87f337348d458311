package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The VOC round trip: generator -> PNG + XML -> DataVec ObjectDetectionRecordReader / VocLabelProvider -> boxes. */
class VocDatasetTest {
    @Test
    void roundTripThroughDataVecGivesTheWrittenBoxes(@TempDir Path dir) throws Exception {
        new SyntheticVoc(64, 1, 4).writeSplit(dir, 6, new Random(5));
        VocDataset d = VocDataset.load(dir, 64, null);
        assertEquals(6, d.items().size());
        assertTrue(SyntheticVoc.CLASSES.containsAll(d.classes()));
        List<String> xml = Files.readAllLines(dir.resolve("Annotations/000002.xml"));
        long written = xml.stream().filter(l -> l.contains("<object>")).count();
        assertEquals(written, d.items().get(2).boxes().size());
        // same image size: DataVec's boxes are the written integers
        for (GroundTruth g : d.items().get(2).boxes()) {
            String xmin = "<xmin>" + (int) g.box().x1() + "</xmin>";
            assertTrue(xml.stream().anyMatch(l -> l.contains(xmin)), "no " + xmin + " in " + xml);
            assertEquals(g.box().x1(), Math.rint(g.box().x1()), 1e-4);
            assertEquals(d.classes().indexOf(nameBefore(xml, xmin)), g.cls());
        }
    }

    private static String nameBefore(List<String> xml, String xmin) {
        String name = null;
        for (String l : xml) {
            if (l.contains("<name>")) {
                name = l.trim().replace("<name>", "").replace("</name>", "");
            }
            if (l.contains(xmin)) {
                return name;
            }
        }
        return null;
    }

    @Test
    void rescalesBoxesAndKeepsRgbOrder(@TempDir Path dir) throws Exception {
        BufferedImage img = new BufferedImage(128, 64, BufferedImage.TYPE_3BYTE_BGR);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.RED);
        g.fillRect(0, 0, 128, 64);
        g.dispose();
        Files.createDirectories(dir.resolve("JPEGImages"));
        Files.createDirectories(dir.resolve("Annotations"));
        ImageIO.write(img, "png", dir.resolve("JPEGImages/a.png").toFile());
        Files.writeString(dir.resolve("Annotations/a.xml"), SyntheticVoc.vocXml("a.png", 128, 64,
                List.of(new SyntheticVoc.Obj("square", 32, 16, 96, 48))));
        VocDataset d = VocDataset.load(dir, 32, null);
        GroundTruth t = d.items().get(0).boxes().get(0);
        assertEquals(new Box(8, 8, 24, 24), t.box());
        byte[] chw = d.items().get(0).chw();
        assertEquals(255, chw[0] & 255, "red channel first");
        assertEquals(0, chw[2 * 32 * 32] & 255, "blue channel last");
    }

    @Test
    void badAnnotationsAreReportedUpFrontByFile(@TempDir Path dir) throws Exception {
        new SyntheticVoc(64, 1, 2).writeSplit(dir, 4, new Random(1));
        Files.delete(dir.resolve("Annotations/000001.xml"));
        Files.writeString(dir.resolve("Annotations/000002.xml"), Files.readString(dir.resolve("Annotations/000002.xml"))
                .replaceFirst("<xmin>\\d+</xmin>", "<xmin>3.5</xmin>"));
        Files.writeString(dir.resolve("Annotations/000003.xml"), "<annotation><object><name>x</name>");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VocDataset.load(dir, 64, null));
        String m = e.getMessage();
        assertTrue(m.startsWith("3 problem(s) in the VOC data set"), m);
        assertTrue(m.contains("000001.xml: missing annotation for image 000001.png"), m);
        assertTrue(m.contains("000002.xml: <xmin> must be an integer (DataVec's VocLabelProvider needs integers); got '3.5'"), m);
        assertTrue(m.contains("000003.xml: not readable XML"), m);
    }

    @Test
    void tagsOnOneLineAreReported(@TempDir Path dir) throws Exception {
        new SyntheticVoc(64, 1, 1).writeSplit(dir, 1, new Random(1));
        Path xml = dir.resolve("Annotations/000000.xml");
        Files.writeString(xml, Files.readString(xml).replace("\n", ""));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VocDataset.validate(dir));
        assertTrue(e.getMessage().contains("000000.xml: DataVec's VocLabelProvider"), e.getMessage());
    }
}
