package io.github.dl4jcnnplugins.conv;

import io.github.dl4jcnnplugins.ops.Conv;
import io.github.dl4jcnnplugins.ops.DeformConv;
import io.github.dl4jcnnplugins.ops.HostOp;
import io.github.dl4jcnnplugins.testing.PluginHarness;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static io.github.dl4jcnnplugins.testing.PluginHarness.assertErrorMentions;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DeformConv2dTest {
    /** Anisotropic kernel, stride, padding and dilation; weight groups and offset groups; v2 with bias. */
    private static final Supplier<DeformConv2d> DCN = () -> new DeformConv2d.Builder().nOut(4).kernelSize(3, 2)
            .stride(2, 1).padding(1, 0).dilation(1, 2).groups(2).offsetGroups(2).hasBias(true).modulation(true).build();
    private static final long[] SHAPE = {2, 4, 5, 6};

    static List<String> goldens() {
        return PluginHarness.goldenNames("DeformConv2d");
    }

    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorch(String name) {
        PluginHarness.assertGoldenParity(name);
    }

    /**
     * The same parity for the composite sampler (SameDiff ops only): what runs where host ops cannot (CUDA, or
     * {@code -Ddl4jcnnplugins.hostOps=false}).
     */
    @ParameterizedTest
    @MethodSource("goldens")
    void matchesPyTorchWithTheCompositeSampler(String name) {
        PluginHarness.withSystemProperty(HostOp.PROPERTY, "false", () -> PluginHarness.assertGoldenParity(name));
    }

    /** Offsets of about +-1 px and a spread mask, so that no sample sits on a pixel centre (a kink of bilinear sampling). */
    private static void randomOffsets(Map<String, INDArray> p) {
        p.get(DeformConv2d.OFFSET_WEIGHT).assign(PluginHarness.randn(21, p.get(DeformConv2d.OFFSET_WEIGHT).shape()).muli(0.4));
        p.get(DeformConv2d.OFFSET_BIAS).assign(PluginHarness.randn(22, p.get(DeformConv2d.OFFSET_BIAS).shape()).muli(0.7));
        if (p.containsKey(DeformConv2d.MASK_WEIGHT)) {
            p.get(DeformConv2d.MASK_WEIGHT).assign(PluginHarness.randn(23, p.get(DeformConv2d.MASK_WEIGHT).shape()).muli(0.5));
            p.get(DeformConv2d.MASK_BIAS).assign(PluginHarness.randn(24, p.get(DeformConv2d.MASK_BIAS).shape()));
        }
    }

    @Test
    void gradientsCheck() {
        PluginHarness.assertGradientsCheck(DCN, SHAPE, DeformConv2dTest::randomOffsets);
        PluginHarness.assertGradientsCheck(() -> new DeformConv2d.Builder().nOut(3).build(), new long[]{1, 2, 4, 3},
                DeformConv2dTest::randomOffsets);
    }

    @Test
    void roundTrips() throws Exception {
        PluginHarness.assertRoundTrips(DCN, SHAPE);
    }

    @Test
    void declaredOutputTypeIsReal() {
        PluginHarness.assertOutputTypeMatches(DCN, new long[]{1, 4, 7, 5});
        PluginHarness.assertOutputTypeMatches(() -> new DeformConv2d.Builder().nOut(2).kernelSize(1).padding(0).build(),
                new long[]{1, 3, 1, 1});
    }

    @Test
    void worksInMultiLayerNetwork() {
        PluginHarness.assertWorksInMultiLayerNetwork(DCN, new long[]{3, 4, 6, 5});
    }

    /**
     * With zero offsets a deformable conv is a plain convolution: v1 at initialisation, and v2 once its mask is 1
     * (mask logits of 40: sigmoid(40) = 1 in double); v2 at initialisation (mask 0.5) is half of one (no bias).
     */
    @Test
    void zeroOffsetsEqualDl4jConvolution() {
        long[] shape = {2, 3, 7, 6};
        INDArray x = PluginHarness.randn(31, shape);
        for (int variant = 0; variant < 3; variant++) {
            boolean v2 = variant > 0;
            boolean bias = variant < 2;
            DeformConv2d dcn = new DeformConv2d.Builder().nOut(5).kernelSize(3, 2).stride(1, 2).padding(2, 1)
                    .dilation(2, 1).hasBias(bias).modulation(v2).build();
            ComputationGraph d = ReferenceRunner.network(dcn, List.of(shape), DataType.DOUBLE);
            Map<String, INDArray> p = d.getLayer(ReferenceRunner.VERTEX).paramTable();
            if (variant == 1) {
                p.get(DeformConv2d.MASK_BIAS).assign(40.0);
            }
            ComputationGraph c = plainConvolution(shape, bias);
            c.getLayer("conv").setParam("W", p.get(DeformConv2d.WEIGHT));
            if (bias) {
                c.getLayer("conv").setParam("b", p.get(DeformConv2d.BIAS).reshape(1, 5));
            }
            INDArray expected = c.outputSingle(false, x);
            if (variant == 2) {
                expected = expected.mul(0.5);
            }
            double err = PluginHarness.relativeError(expected, d.outputSingle(false, x));
            assertTrue(err < 1e-12, "variant " + variant + ": relative error " + err);
        }
    }

    private static ComputationGraph plainConvolution(long[] shape, boolean bias) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().dataType(DataType.DOUBLE)
                .updater(new NoOp()).graphBuilder().addInputs("in")
                .setInputTypes(InputType.convolutional(shape[2], shape[3], shape[1]))
                .addLayer("conv", new ConvolutionLayer.Builder(3, 2).stride(1, 2).padding(2, 1).dilation(2, 1)
                        .convolutionMode(ConvolutionMode.Truncate).hasBias(bias).nOut(5)
                        .activation(Activation.IDENTITY).build(), "in")
                .setOutputs("conv").build();
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        return net;
    }

    /**
     * The functional op against a naive loop over the formula (torchvision's test strategy): anisotropic kernel,
     * stride, padding and dilation, weight groups and offset groups, offsets of +-2 px (many taps fall outside),
     * a mask, minibatch 1 and 3.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 3})
    void functionalOpMatchesNaiveLoop(int n) {
        int c = 4, h = 5, w = 6, co = 6, g = 2, og = 2;
        Conv.Spec spec = new Conv.Spec(3, 2, 2, 1, 1, 0, 1, 2, g);
        int ho = (int) spec.outH(h), wo = (int) spec.outW(w), k = spec.kH() * spec.kW();
        INDArray x = PluginHarness.randn(41, n, c, h, w);
        INDArray offset = PluginHarness.randn(42, n, 2L * og * k, ho, wo).muli(2.0);
        INDArray mask = Nd4j.rand(DataType.DOUBLE, n, og * k, ho, wo);
        INDArray weight = PluginHarness.randn(43, co, c / g, spec.kH(), spec.kW());
        INDArray bias = PluginHarness.randn(44, co);
        SameDiff sd = SameDiff.create();
        INDArray out = DeformConv.deformConv2d(sd, sd.constant(x), c, h, w, sd.constant(offset), sd.constant(mask),
                sd.constant(weight), sd.constant(bias), co, spec, og).eval();

        INDArray expected = Nd4j.zeros(DataType.DOUBLE, n, co, ho, wo);
        int cpg = c / g, copg = co / g, cpog = c / og;
        for (int b = 0; b < n; b++) {
            for (int o = 0; o < co; o++) {
                for (int y = 0; y < ho; y++) {
                    for (int xx = 0; xx < wo; xx++) {
                        double acc = bias.getDouble(o);
                        for (int cl = 0; cl < cpg; cl++) {
                            int ch = (o / copg) * cpg + cl;
                            int gg = ch / cpog;
                            for (int i = 0; i < spec.kH(); i++) {
                                for (int j = 0; j < spec.kW(); j++) {
                                    int t = i * spec.kW() + j;
                                    double py = y * spec.sH() - spec.pH() + i * spec.dH() + offset.getDouble(b, gg * 2 * k + 2 * t, y, xx);
                                    double px = xx * spec.sW() - spec.pW() + j * spec.dW() + offset.getDouble(b, gg * 2 * k + 2 * t + 1, y, xx);
                                    acc += weight.getDouble(o, cl, i, j) * mask.getDouble(b, gg * k + t, y, xx)
                                            * bilinear(x, b, ch, py, px);
                                }
                            }
                        }
                        expected.putScalar(new int[]{b, o, y, xx}, acc);
                    }
                }
            }
        }
        double err = PluginHarness.relativeError(expected, out);
        assertTrue(err < 1e-12, "relative error " + err);
    }

    private static double bilinear(INDArray x, int b, int c, double py, double px) {
        long h = x.size(2), w = x.size(3);
        if (py <= -1 || py >= h || px <= -1 || px >= w) {
            return 0;
        }
        int y0 = (int) Math.floor(py), x0 = (int) Math.floor(px);
        double ly = py - y0, lx = px - x0, v = 0;
        for (int dy = 0; dy < 2; dy++) {
            for (int dx = 0; dx < 2; dx++) {
                int yy = y0 + dy, xx = x0 + dx;
                if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
                    v += (dy == 0 ? 1 - ly : ly) * (dx == 0 ? 1 - lx : lx) * x.getDouble(b, c, yy, xx);
                }
            }
        }
        return v;
    }

    @Test
    void badConfigurationIsExplained() {
        assertErrorMentions(() -> new DeformConv2d.Builder().nOut(0).build(), "DeformConv2d", "`nOut`", "nOut=0");
        assertErrorMentions(() -> new DeformConv2d.Builder().nOut(4).stride(0, 1).build(),
                "DeformConv2d", "`stride`", "stride=[0, 1]");
        assertErrorMentions(() -> new DeformConv2d.Builder().nOut(4).padding(-1).build(),
                "DeformConv2d", "`padding`", "padding=[-1, -1]");
        assertErrorMentions(() -> new DeformConv2d.Builder().nOut(4).offsetGroups(0).build(),
                "DeformConv2d", "`offsetGroups`", "offsetGroups=0");
        assertErrorMentions(() -> new DeformConv2d.Builder().nOut(5).groups(2).build(),
                "DeformConv2d", "nOut must be divisible by groups", "nOut=5, groups=2");
        assertErrorMentions(() -> new DeformConv2d.Builder().nIn(6).nOut(4).offsetGroups(4).build(),
                "DeformConv2d", "divisible by offsetGroups", "6 channels, offsetGroups=4");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new DeformConv2d.Builder().nOut(4).groups(4).build(),
                new long[]{1, 6, 5, 5}, 1), "DeformConv2d", "divisible by groups", "6 channels, groups=4");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new DeformConv2d.Builder().nOut(4).kernelSize(5).padding(0).build(),
                new long[]{1, 2, 3, 4}, 1), "DeformConv2d", "kernel 5x5 is larger than the padded input 3x4");
        assertErrorMentions(() -> PluginHarness.checkNetwork(new DeformConv2d.Builder().nOut(4).kernelSize(3).dilation(2, 1).padding(1).build(),
                new long[]{1, 2, 2, 6}, 1), "DeformConv2d", "kernel 5x3 is larger than the padded input 4x8");
    }
}
