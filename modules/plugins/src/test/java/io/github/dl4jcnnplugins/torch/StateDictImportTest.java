package io.github.dl4jcnnplugins.torch;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.pool.BlurPool;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertEquals;

class StateDictImportTest {
    private static ComputationGraph cbam() {
        return ReferenceRunner.network(new Cbam.Builder().reduction(2).spatialKernel(3).build(),
                List.of(new long[]{1, 4, 5, 5}), DataType.DOUBLE);
    }

    private static Map<String, INDArray> cbamStateDict(String prefix) {
        Map<String, INDArray> sd = new HashMap<>();
        sd.put(prefix + "ca.fc1.weight", PluginHarness.randn(1, 2, 4, 1, 1));
        sd.put(prefix + "ca.fc2.weight", PluginHarness.randn(2, 4, 2, 1, 1));
        sd.put(prefix + "sa.conv1.weight", PluginHarness.randn(3, 1, 2, 3, 3));
        return sd;
    }

    @Test
    void importsByTorchNamesWithModulePrefix() {
        ComputationGraph net = cbam();
        Map<String, INDArray> sd = cbamStateDict("layer1.0.cbam.");
        sd.put("layer1.0.conv.weight", Nd4j.zeros(3, 3));          // another module of the same model: ignored
        sd.put("layer1.0.cbam.bn.num_batches_tracked", Nd4j.scalar(3L)); // never a parameter
        StateDictImport.load(net, "plugin", sd, "layer1.0.cbam.");
        assertEquals(sd.get("layer1.0.cbam.sa.conv1.weight"), net.getLayer("plugin").getParam("sa.conv1.weight"));
    }

    @Test
    void reportsMissingUnexpectedAndMisShapedKeysTogether() {
        Map<String, INDArray> sd = cbamStateDict("");
        sd.remove("ca.fc2.weight");
        sd.put("ca.fc3.weight", Nd4j.zeros(1));
        sd.put("sa.conv1.weight", Nd4j.zeros(DataType.DOUBLE, 1, 2, 7, 7));
        assertErrorMentions(() -> StateDictImport.load(cbam(), "plugin", sd, ""),
                "Cbam 'plugin'", "cannot import the state_dict", "missing ca.fc2.weight [4, 2, 1, 1]",
                "unexpected ca.fc3.weight", "sa.conv1.weight has shape [1, 2, 7, 7] in the state_dict but [1, 2, 3, 3] here");
    }

    @Test
    void checksBufferValuesInsteadOfLoadingThem() {
        ComputationGraph net = ReferenceRunner.network(new BlurPool.Builder().filterSize(3).build(),
                List.of(new long[]{1, 2, 6, 6}), DataType.DOUBLE);
        BlurPool conf = (BlurPool) ReferenceRunner.pluginOf(net);
        Map<String, INDArray> good = new HashMap<>(conf.referenceBuffers(DataType.DOUBLE));
        StateDictImport.load(net, "plugin", good, "");
        Map<String, INDArray> bad = Map.of("filt", Nd4j.ones(DataType.DOUBLE, 2, 1, 3, 3));
        assertErrorMentions(() -> StateDictImport.load(net, "plugin", bad, ""), "BlurPool", "buffer filt", "differs");
    }

    @Test
    void unknownModuleIsOneClearLine() {
        assertErrorMentions(() -> ReferenceModules.create("Transformer", null), "unknown module 'Transformer'", "SEBlock");
        assertErrorMentions(() -> ReferenceModules.create("SEBlock",
                new org.nd4j.shade.jackson.databind.ObjectMapper().createObjectNode().put("channels", 8).put("reduce", 2)),
                "SEBlock", "unknown argument(s) [reduce]");
    }
}
