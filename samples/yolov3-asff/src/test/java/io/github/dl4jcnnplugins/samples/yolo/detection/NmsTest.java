package io.github.dl4jcnnplugins.samples.yolo.detection;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class NmsTest {
    @Test
    void suppressesOverlapsOfTheSameClassOnly() {
        Box a = new Box(0, 0, 10, 10);
        Box a2 = new Box(1, 0, 11, 10);   // IoU 90/110 with a
        Box far = new Box(50, 50, 60, 60);
        List<Detection> in = List.of(new Detection(0, 0, 0.6, a2), new Detection(0, 0, 0.9, a),
                new Detection(0, 1, 0.5, a2), new Detection(0, 0, 0.4, far), new Detection(1, 0, 0.3, a2));
        List<Detection> out = Nms.apply(in, 0.5, 100);
        assertEquals(List.of(new Detection(0, 0, 0.9, a), new Detection(0, 1, 0.5, a2), new Detection(0, 0, 0.4, far),
                new Detection(1, 0, 0.3, a2)), out);
    }

    @Test
    void keepsOverlapsBelowTheThresholdAndCapsPerImage() {
        Box a = new Box(0, 0, 10, 10);
        Box b = new Box(6, 0, 16, 10);   // IoU 40/160 = 0.25
        List<Detection> in = List.of(new Detection(0, 0, 0.9, a), new Detection(0, 0, 0.8, b));
        assertEquals(2, Nms.apply(in, 0.3, 100).size());
        assertEquals(1, Nms.apply(in, 0.2, 100).size());
        assertEquals(List.of(new Detection(0, 0, 0.9, a)), Nms.apply(in, 0.3, 1));
    }
}
