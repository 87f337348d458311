package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConvBnActTest {

    @Test
    void parametersAreTheStateDictEntries() {
        ConvBnAct rfbStyle = ConvBnAct.named("branch1.1", 4, 8, Conv.Spec.of(3, 2, 1), 0.01, 1e-5, Activation.RELU);
        List<ParamSpec> p = rfbStyle.params();
        assertEquals(List.of("branch1.1.conv.weight", "branch1.1.bn.weight", "branch1.1.bn.bias",
                "branch1.1.bn.running_mean", "branch1.1.bn.running_var"), p.stream().map(ParamSpec::torchName).toList());
        assertArrayEquals(new long[]{8, 4, 3, 3}, p.get(0).shape());

        ConvBnAct depthwise = ConvBnAct.sequential("cheap_operation", 4, 8, Conv.Spec.of(3, 1, 1, 1, 4), 0.1, 1e-5,
                Activation.IDENTITY);
        assertEquals("cheap_operation.0.weight", depthwise.params().get(0).torchName());
        assertEquals("cheap-operation.1.running-var", depthwise.params().get(4).key());
        assertArrayEquals(new long[]{8, 1, 3, 3}, depthwise.params().get(0).shape());
        assertEquals(4, rfbStyle.outH(7));
        assertEquals(7, depthwise.outH(7));
        assertEquals(7, ConvBnAct.named("b", 2, 2, Conv.Spec.of(3, 1, 2, 2, 1), 0.01, 1e-5, null).outW(7));
    }

    @Test
    void activations() {
        SameDiff sd = SameDiff.create();
        INDArray xv = PluginHarness.randn(1, 2, 3, 4, 4);
        SDVariable x = sd.var("x", xv);
        assertSame(x, ConvBnAct.activate(sd, x, Activation.IDENTITY));
        INDArray silu = ConvBnAct.activate(sd, x, Activation.SWISH).eval();
        assertTrue(PluginHarness.relativeError(xv.mul(Transforms.sigmoid(xv, true)), silu) < 1e-15, "SiLU");
        INDArray relu = ConvBnAct.activate(sd, x, Activation.RELU).eval();
        assertTrue(PluginHarness.relativeError(Transforms.relu(xv, true), relu) < 1e-15, "ReLU");
    }

    @Test
    void unsupportedActivationIsExplained() {
        PluginHarness.assertErrorMentions(() -> ConvBnAct.named("conv1", 3, 8, Conv.Spec.of(3, 1, 1), 0.03, 1e-3,
                Activation.LEAKYRELU), "ConvBnAct 'conv1.conv'", "LEAKYRELU is not supported", "SWISH (SiLU)");
    }
}
