package io.github.dl4jcnnplugins.base;

import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.testing.ShapeKeepingLayer;
import lombok.NoArgsConstructor;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.shape.Reshape;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * Reshapes run as views in the plug-in sessions ({@link ForwardReuse#reshapeView}), and a plug-in whose output or
 * input gradient is then a view of its input or of the upstream gradient still hands DL4J arrays of its own.
 */
class ReshapeViewTest {
    private static final long[] SHAPE = {2, 3, 4, 5};

    /** Test plug-in: the output is the input, reshaped to [N, C*H*W] and back (two views). */
    @NoArgsConstructor
    static class ReshapeThrough extends ShapeKeepingLayer {
        @Override
        public SDVariable define(PluginContext ctx, SDVariable x, Map<String, SDVariable> p) {
            long[] s = ctx.inputShape(0);
            return x.reshape(-1, s[1] * s[2] * s[3]).reshape(-1, s[1], s[2], s[3]);
        }

        @Override
        public String describe() {
            return "";
        }
    }

    @Test
    void reshapeOfARowMajorArrayIsAView() {
        SameDiff sd = SameDiff.create();
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 4);
        Reshape op = new Reshape(sd, sd.var("x", x), new long[]{6, 4});
        OpContext ctx = Nd4j.getExecutioner().buildContext();
        ctx.setInputArrays(x);
        ctx.setOutputArrays(Nd4j.create(DataType.DOUBLE, 6, 4));
        INDArray view = ForwardReuse.reshapeView(op, ctx);
        assertNotNull(view);
        assertEquals(List.of(6L, 4L), List.of(view.size(0), view.size(1)));
        view.putScalar(5, 3, 42.0);
        assertEquals(42.0, x.getDouble(1, 2, 3));

        INDArray permuted = x.permute(2, 0, 1);   // not row-major with default strides: the kernel must run
        ctx.setInputArrays(permuted);
        ctx.setOutputArrays(Nd4j.create(DataType.DOUBLE, 4, 6));
        assertNull(ForwardReuse.reshapeView(op, ctx));
    }

    @Test
    void outputAndInputGradientDoNotShareTheCallersArrays() {
        ComputationGraph net = PluginHarness.checkNetwork(new ReshapeThrough(), SHAPE, 7);
        net.initGradientsView();
        Layer layer = net.getLayer("plugin");
        for (LayerWorkspaceMgr mgr : List.of(LayerWorkspaceMgr.noWorkspaces())) {
            INDArray in = PluginHarness.randn(3, SHAPE);
            INDArray inCopy = in.dup();
            INDArray eps = PluginHarness.randn(4, SHAPE);
            INDArray epsCopy = eps.dup();
            layer.setInput(in, mgr);
            INDArray out = layer.activate(true, mgr);
            assertEquals(inCopy, out);
            out.addi(1.0);                       // DL4J may change activations in place
            assertEquals(inCopy, in);
            Pair<Gradient, INDArray> g = layer.backpropGradient(eps, mgr);
            assertEquals(epsCopy, g.getSecond());
            g.getSecond().addi(1.0);
            assertEquals(epsCopy, eps);
        }
    }
}
