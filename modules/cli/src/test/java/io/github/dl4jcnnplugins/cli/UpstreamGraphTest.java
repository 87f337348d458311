package io.github.dl4jcnnplugins.cli;

import io.github.dl4jcnnplugins.base.TorchMapped;
import io.github.dl4jcnnplugins.torch.ReferenceModules;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The benchmark's forward+backward computes the same gradients as the vertex-level reference run. */
class UpstreamGraphTest {

    @Test
    void forwardBackwardGivesTheReferenceGradients() throws Exception {
        List<long[]> shapes = List.of(new long[] {2, 16, 5, 5});
        TorchMapped se = ReferenceModules.create("SEBlock", new ObjectMapper().readTree("{\"channels\":16,\"reduction\":4}"));
        UpstreamGraph net = new UpstreamGraph(ReferenceRunner.configuration(se, shapes, DataType.DOUBLE));
        net.init();
        ComputationGraph reference = ReferenceRunner.network(
                ReferenceModules.create("SEBlock", new ObjectMapper().readTree("{\"channels\":16,\"reduction\":4}")),
                shapes, DataType.DOUBLE);
        reference.setParams(net.params());
        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.randn(DataType.DOUBLE, shapes.get(0));
        INDArray g = Nd4j.randn(DataType.DOUBLE, shapes.get(0));

        ReferenceRunner.run(reference, new INDArray[] {x}, g);   // the vertex's own backward, no workspaces
        net.forwardBackward(new INDArray[] {x}, g);
        INDArray expected = reference.getFlattenedGradients();
        assertEquals(2 * 16 * 4, expected.length());   // the two bias-free fc layers of timm / the paper
        assertArrayEquals(expected.toDoubleVector(), net.getFlattenedGradients().toDoubleVector(), 1e-12);
    }
}
