package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticVocTest {
    @Test
    void seededObjectsInsideTheImageAndEveryScaleServed() {
        SyntheticVoc gen = new SyntheticVoc(128, 2, 6);
        Anchors anchors = Anchors.forImageSize(128);
        int[] perScale = new int[3];
        int[] perClass = new int[4];
        Random r = new Random(7);
        for (int i = 0; i < 100; i++) {
            SyntheticVoc.Sample s = gen.sample(r);
            assertTrue(s.objects().size() >= 1 && s.objects().size() <= 6, "objects: " + s.objects().size());
            for (SyntheticVoc.Obj o : s.objects()) {
                assertTrue(o.xmin() >= 0 && o.ymin() >= 0 && o.xmax() < 128 && o.ymax() < 128 && o.xmin() < o.xmax()
                        && o.ymin() < o.ymax(), o.toString());
                perScale[anchors.best(o.xmax() - o.xmin(), o.ymax() - o.ymin()) / 3]++;
                perClass[SyntheticVoc.CLASSES.indexOf(o.name())]++;
            }
        }
        for (int k = 0; k < 3; k++) {
            assertTrue(perScale[k] > 60, "scale " + k + " gets only " + perScale[k] + " objects");
        }
        for (int c = 0; c < 4; c++) {
            assertTrue(perClass[c] > 50, "class " + c + ": " + perClass[c]);
        }
        // same seed, same data
        SyntheticVoc.Sample a = gen.sample(new Random(3)), b = gen.sample(new Random(3));
        assertEquals(a.objects(), b.objects());
        assertArrayEquals(a.image().getRGB(0, 0, 128, 128, null, 0, 128), b.image().getRGB(0, 0, 128, 128, null, 0, 128));
    }

    @Test
    void xmlHasOneTagPerLine(@TempDir Path dir) throws Exception {
        new SyntheticVoc(64, 1, 3).write(dir, 3, 2, 1);
        assertEquals(3, Files.list(dir.resolve("train/JPEGImages")).count());
        assertEquals(2, Files.list(dir.resolve("val/Annotations")).count());
        List<String> lines = Files.readAllLines(dir.resolve("train/Annotations/000000.xml"));
        List<String> multi = new ArrayList<>();
        for (String l : lines) {
            if (l.chars().filter(ch -> ch == '<').count() > 2) {
                multi.add(l);
            }
        }
        assertTrue(multi.isEmpty(), "lines with more than one element: " + multi);
    }
}
