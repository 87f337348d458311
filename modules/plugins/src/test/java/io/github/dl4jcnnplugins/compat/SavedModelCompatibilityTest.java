package io.github.dl4jcnnplugins.compat;

import io.github.dl4jcnnplugins.torch.Parity;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.File;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Models saved by earlier versions (all eleven plug-ins, trained, with updater state) still load and agree. */
class SavedModelCompatibilityTest {

    @ParameterizedTest
    @ValueSource(strings = {"0.1.0"})
    void loadsAndComputesTheSame(String version) throws Exception {
        File dir = new File(getClass().getResource("/compat").toURI());
        ComputationGraph net = ModelSerializer.restoreComputationGraph(new File(dir, "plugins-" + version + ".zip"), true);
        assertNotNull(net.getUpdater(), "updater state restored");
        INDArray x = Nd4j.createFromNpyFile(new File(dir, "plugins-" + version + ".input.npy"));
        INDArray expected = Nd4j.createFromNpyFile(new File(dir, "plugins-" + version + ".output.npy"));
        double err = Parity.error(expected, net.outputSingle(false, x));
        assertTrue(err < 1e-12, "output of the model saved by " + version + " differs: " + err);
    }
}
