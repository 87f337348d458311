package io.github.dl4jcnnplugins.base;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.conv.GhostModule;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backward pass reuses the training forward pass's results ({@link ForwardReuse}) and gets exactly the gradients
 * of running the forward ops again; a record that does not belong to the backward pass's inputs is not used.
 */
class ForwardReuseTest {
    private static final long[] SHAPE = {2, 4, 5, 5};

    @AfterEach
    void restore() {
        ForwardReuse.enabled(true);
    }

    private static INDArray trainingStepGradient(Supplier<? extends PluginLayer> plugin) {
        ComputationGraph net = PluginHarness.checkNetwork(plugin.get(), SHAPE, 7);
        net.setInputs(PluginHarness.randn(1, SHAPE));
        net.setLabels(PluginHarness.randn(2, SHAPE[0], 3));
        net.computeGradientAndScore();   // DL4J's training path, with its default workspaces
        return net.gradient().gradient().dup();
    }

    @Test
    void trainingStepReusesTheForwardPassWithIdenticalGradients() {
        for (Supplier<? extends PluginLayer> plugin : java.util.List.<Supplier<? extends PluginLayer>>of(
                () -> new GhostModule.Builder().nOut(6).build(),
                () -> new Cbam.Builder().reduction(2).build())) {
            long reused = ForwardReuse.REUSED.get();
            INDArray withReuse = trainingStepGradient(plugin);
            assertTrue(ForwardReuse.REUSED.get() > reused, "the backward pass did not use the forward pass's results");

            ForwardReuse.enabled(false);
            long recomputedBefore = ForwardReuse.REUSED.get();
            INDArray without = trainingStepGradient(plugin);
            assertEquals(recomputedBefore, ForwardReuse.REUSED.get());
            ForwardReuse.enabled(true);
            assertTrue(PluginHarness.relativeError(without, withReuse) < 1e-14,
                    "gradients differ: " + PluginHarness.relativeError(without, withReuse));
        }
    }

    @Test
    void recordOfOtherInputsIsNotUsed() {
        ComputationGraph net = PluginHarness.checkNetwork(new GhostModule.Builder().nOut(6).build(), SHAPE, 7);
        net.initGradientsView();
        Layer layer = net.getLayer("plugin");
        LayerWorkspaceMgr mgr = LayerWorkspaceMgr.noWorkspaces();
        INDArray a = PluginHarness.randn(3, SHAPE);
        INDArray b = PluginHarness.randn(4, SHAPE);
        INDArray eps = PluginHarness.randn(5, SHAPE[0], 6, SHAPE[2], SHAPE[3]);

        layer.setInput(b, mgr);
        layer.activate(true, mgr);
        Pair<Gradient, INDArray> expected = layer.backpropGradient(eps, mgr);
        INDArray expectedIn = expected.getSecond().dup();
        INDArray expectedParams = layer.getGradientsViewArray().dup();

        layer.setInput(a, mgr);
        layer.activate(true, mgr);            // records the pass over a
        layer.setInput(b, mgr);               // ... but the backward pass is for b
        long recomputed = ForwardReuse.RECOMPUTED.get();
        Pair<Gradient, INDArray> got = layer.backpropGradient(eps, mgr);
        assertEquals(recomputed + 1, ForwardReuse.RECOMPUTED.get());
        assertTrue(PluginHarness.relativeError(expectedIn, got.getSecond()) < 1e-14);
        assertTrue(PluginHarness.relativeError(expectedParams, layer.getGradientsViewArray()) < 1e-14);
    }
}
