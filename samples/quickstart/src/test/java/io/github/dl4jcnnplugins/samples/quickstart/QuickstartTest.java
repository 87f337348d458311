package io.github.dl4jcnnplugins.samples.quickstart;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.dataset.DataSet;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Smoke test of the quickstart: the network builds, trains a few steps and its loss falls. */
class QuickstartTest {
    @Test
    void trainsAndTheLossFalls() {
        ComputationGraph net = Quickstart.network(1);
        DataSet data = Quickstart.dots(16, new Random(1));
        assertEquals(2, net.outputSingle(false, data.getFeatures()).size(1));
        double before = net.score(data);
        for (int i = 0; i < 15; i++) {
            net.fit(data);
        }
        assertTrue(net.score(data) < before, "loss did not fall");
    }

    @Test
    void labelsAreDotCentres() {
        DataSet d = Quickstart.dots(4, new Random(3));
        for (int i = 0; i < 4; i++) {
            double x = Quickstart.toPixel(d.getLabels().getDouble(i, 0));
            double y = Quickstart.toPixel(d.getLabels().getDouble(i, 1));
            int c = (int) Math.floor(x), r = (int) Math.floor(y);
            assertEquals(1.0, d.getFeatures().getDouble(i, 0, r, c));
            assertEquals(1.0, d.getFeatures().getDouble(i, 0, r + 1, c + 1));
        }
    }
}
