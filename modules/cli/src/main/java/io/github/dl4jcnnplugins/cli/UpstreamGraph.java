package io.github.dl4jcnnplugins.cli;

import org.deeplearning4j.nn.api.FwdPassType;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.graph.vertex.GraphVertex;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A {@link ComputationGraph} that runs one training forward and backward pass for given upstream gradients
 * (dL/dOutput of each network output): the measurement {@code y = m(x); y.backward(g)} of {@code bench_torch.py}, on
 * DL4J's training path.
 *
 * <p>{@link #forward} is the training forward {@code fit()} runs; {@link #forwardBackward} is
 * {@code computeGradientAndScore()} without the loss: the same workspaces
 * (activations in {@code WS_ALL_LAYERS_ACT}, per-layer working memory, per-layer activation-gradient workspaces),
 * the same {@code ffToLayerActivationsInWS} forward and {@code calcBackpropGradients} backward, with the upstream
 * gradients handed to the output vertices as external errors (DL4J's API for errors computed outside the network).
 * A loss layer on top would add its own work: {@code CnnLossLayer} copies its input, the gradient and the score
 * array several times per pass (measured: most of an SE block's time at 8x256x56x56).
 */
final class UpstreamGraph extends ComputationGraph {

    UpstreamGraph(ComputationGraphConfiguration configuration) {
        super(configuration);
    }

    /**
     * Training forward of {@code inputs} as {@code fit()} runs it (activations in {@code WS_ALL_LAYERS_ACT}, which closes
     * afterwards); returns the shape of the first output.
     */
    long[] forward(INDArray[] inputs) {
        return pass(inputs, null);
    }

    /** Training forward of {@code inputs}, then backward of {@code upstream}; the gradients land in {@link #gradient()}. */
    void forwardBackward(INDArray[] inputs, INDArray... upstream) {
        pass(inputs, upstream);
    }

    /** The training forward, and the backward of {@code upstream} unless it is null; the first output's shape. */
    private long[] pass(INDArray[] inputs, INDArray[] upstream) {
        LayerWorkspaceMgr mgr = trainingWorkspaces();
        setInputs(inputs);
        long[] shape;
        try (MemoryWorkspace ignored = mgr.notifyScopeEntered(ArrayType.ACTIVATIONS)) {
            Map<String, INDArray> acts = ffToLayerActivationsInWS(true, -1, null, FwdPassType.STANDARD, false, inputs,
                    null, null, false);
            shape = acts.get(getConfiguration().getNetworkOutputs().get(0)).shape();
            if (upstream != null) {
                calcBackpropGradients(false, false, upstream);
            }
        }
        for (GraphVertex v : vertices) {
            v.clear();
        }
        return shape;
    }

    /** The workspaces of {@code computeGradientAndScore()} (default workspace mode). */
    private LayerWorkspaceMgr trainingWorkspaces() {
        synchronizeIterEpochCounts();
        LayerWorkspaceMgr mgr = LayerWorkspaceMgr.builder()
                .with(ArrayType.ACTIVATIONS, WS_ALL_LAYERS_ACT, WS_ALL_LAYERS_ACT_CONFIG)
                .with(ArrayType.INPUT, WS_ALL_LAYERS_ACT, WS_ALL_LAYERS_ACT_CONFIG)
                .with(ArrayType.FF_WORKING_MEM, WS_LAYER_WORKING_MEM, WS_LAYER_WORKING_MEM_CONFIG)
                .with(ArrayType.BP_WORKING_MEM, WS_LAYER_WORKING_MEM, WS_LAYER_WORKING_MEM_CONFIG)
                .with(ArrayType.RNN_FF_LOOP_WORKING_MEM, WS_RNN_LOOP_WORKING_MEM, WS_RNN_LOOP_WORKING_MEM_CONFIG)
                .with(ArrayType.RNN_BP_LOOP_WORKING_MEM, WS_RNN_LOOP_WORKING_MEM, WS_RNN_LOOP_WORKING_MEM_CONFIG)
                .build();
        mgr.setHelperWorkspacePointers(helperWorkspaces);
        return mgr;
    }
}
