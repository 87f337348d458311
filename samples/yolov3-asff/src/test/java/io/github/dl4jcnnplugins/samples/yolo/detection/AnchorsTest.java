package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class AnchorsTest {
    @Test
    void bestAnchorByShapeAndPriorsInGridUnits() {
        Anchors a = Anchors.forImageSize(128);
        assertEquals(0, a.best(9, 12));
        assertEquals(1, a.best(13, 9));
        assertEquals(8, a.best(100, 100));
        assertEquals(4, a.best(31, 21));
        assertArrayEquals(new float[]{48f / 32, 64f / 32}, a.priorsGridUnits(2).getRow(0).toFloatVector(), 1e-6f);
        assertArrayEquals(new float[]{9f / 8, 12f / 8}, a.priorsGridUnits(0).getRow(0).toFloatVector(), 1e-6f);
        assertEquals(2 * 9, Anchors.forImageSize(256).pixels()[0][0], 1e-12);
    }
}
