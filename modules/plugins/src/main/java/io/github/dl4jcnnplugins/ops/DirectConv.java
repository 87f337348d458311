package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.Arrays;
import java.util.List;

/**
 * A convolution (float; any groups) computed by oneDNN's own convolution primitives, called directly ({@link Dnnl})
 * instead of through libnd4j's {@code conv2d} / {@code conv2d_bp}, where an ND4J oneDNN build is loaded.
 *
 * <p>Why: libnd4j 1.0.0-M2.1's oneDNN convolution computes oneDNN's right padding without the dilation
 * ({@code (oH - 1) sH - iH + kH - pH}), so oneDNN rejects every dilated convolution ("could not create a descriptor
 * for a dilated convolution forward propagation primitive"); here it is {@code (oH - 1) sH + (kH - 1) dH + 1 - iH - pH}.
 * And libnd4j asks oneDNN for its blocked layouts and reorders source, weights and output on every call, which costs
 * more than a pointwise convolution's product itself; the plain {@code nchw} / {@code oihw} layouts asked for here make
 * oneDNN run one GEMM per image on ND4J's arrays as they are. Measured (Intel Xeon with AVX-512, 2 threads, float,
 * medians of 11): {@code [8, 128, 56, 56] -> 128} 1x1: libnd4j 8.7 ms forward, 11.3 backward; direct 2.7 and
 * 2.7 + 3.3. ASPP's dilated 3x3 {@code [2, 512, 32, 32] -> 256}, rate 12: direct 16.5 ms forward (290 GFLOP/s),
 * 21 + 22 backward. Where libnd4j's own convolution is as fast (undilated 3x3: its backward was faster), it keeps it:
 * {@link Conv#conv2d} decides.
 *
 * <p>Gradient: oneDNN's backward-data and backward-weights primitives, each a host op of its own. oneDNN has no
 * float64 convolution, so double-precision graphs (the parity tests) never take this route.
 */
public final class DirectConv {
    private DirectConv() {
    }

    /** System property: {@code false} never calls oneDNN directly. */
    public static final String PROPERTY = "dl4jcnnplugins.directConv";

    private static volatile Boolean available;

    /**
     * Whether oneDNN can be called here: an ND4J oneDNN build with its helpers allowed ({@link Conv#oneDnnActive()}),
     * JavaCPP's {@code org.bytedeco:dnnl} classes on the class path (they come with the oneDNN builds' natives) and
     * {@value #PROPERTY} not {@code false}.
     */
    public static boolean available() {
        if ("false".equalsIgnoreCase(System.getProperty(PROPERTY)) || !Conv.oneDnnActive()) {
            return false;
        }
        Boolean a = available;
        if (a == null) {
            try {
                Class.forName("org.bytedeco.dnnl.global.dnnl");
                Dnnl.implementation(Dnnl.Kind.FORWARD, new Dnnl.Shape(1, 1, 3, 3, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1));
                a = true;
            } catch (Throwable t) {
                a = false;
            }
            available = a;
        }
        return a;
    }

    /**
     * Whether a route of oneDNN called directly (this one, {@link DirectEltwise}) may be
     * built for {@code dt} data in {@code sd}: float, a plug-in graph on the CPU backend ({@link HostOp#usableIn}),
     * oneDNN callable ({@link #available()}) and the route's own {@code switchProperty} not {@code false}.
     */
    static boolean usable(SameDiff sd, DataType dt, String switchProperty) {
        return dt == DataType.FLOAT && !"false".equalsIgnoreCase(System.getProperty(switchProperty))
                && HostOp.usableIn(sd, dt) && available();
    }

    /**
     * Whether {@code x [N, inChannels, h, w]} of type {@code dt} convolved with {@code spec} can take this route in
     * {@code sd}: {@link #usable}, groups dividing both channel counts, a non-empty output, and oneDNN willing to
     * create the three primitives (checked once per shape, with one image).
     */
    static boolean applies(SameDiff sd, DataType dt, Conv.Spec spec, long inChannels, long outChannels, long h,
                           long w) {
        if (inChannels % spec.groups() != 0 || outChannels % spec.groups() != 0 || h < 1 || w < 1
                || spec.outH(h) < 1 || spec.outW(w) < 1 || !usable(sd, dt, PROPERTY)) {
            return false;
        }
        try {
            Dnnl.Shape s = shape(1, inChannels, h, w, outChannels, spec);
            for (Dnnl.Kind k : Dnnl.Kind.values()) {
                Dnnl.implementation(k, s);
            }
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** {@code conv2d(x, weight)} (no bias) on {@code x [N, inChannels, h, w]}, weights {@code [out, in, kH, kW]}. */
    static SDVariable conv2d(SameDiff sd, SDVariable x, SDVariable weight, Conv.Spec spec, long h, long w) {
        return new Forward(sd, x, weight, spec, h, w).outputVariable();
    }

    private static Dnnl.Shape shape(long n, long c, long h, long w, long o, Conv.Spec spec) {
        return new Dnnl.Shape(n, c, h, w, o, spec.kH(), spec.kW(), spec.sH(), spec.sW(), spec.pH(), spec.pW(),
                spec.dH(), spec.dW(), spec.groups());
    }

    /**
     * The integer arguments every op of this route carries: kernel, stride, padding, dilation, input h, w, then the
     * groups.
     */
    private static long[] arguments(Conv.Spec s, long h, long w) {
        return new long[]{s.kH(), s.kW(), s.sH(), s.sW(), s.pH(), s.pW(), s.dH(), s.dW(), h, w, s.groups()};
    }

    private static Conv.Spec spec(long[] a) {
        return new Conv.Spec((int) a[0], (int) a[1], (int) a[2], (int) a[3], (int) a[4], (int) a[5], (int) a[6],
                (int) a[7], (int) a[10]);
    }

    /** Base of the three ops: the spec and input size as integer arguments. */
    private abstract static class ConvOp extends HostOp {
        ConvOp() {
        }

        ConvOp(SameDiff sd, Conv.Spec spec, long h, long w, SDVariable... args) {
            super(sd, args);
            addIArgument(arguments(spec, h, w));
        }

        Conv.Spec spec() {
            return DirectConv.spec(iArgs());
        }

        long inH() {
            return iArgs()[8];
        }

        long inW() {
            return iArgs()[9];
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }
    }

    /** {@code y = conv(x, w)}: inputs {@code x [N, C, H, W]}, {@code w [O, C, kH, kW]}. */
    public static final class Forward extends ConvOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_conv";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, SDVariable weight, Conv.Spec spec, long h, long w) {
            super(sd, spec, h, w, x, weight);
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            long[] w = in.get(1);
            Conv.Spec s = spec();
            if (x.length != 4 || w.length != 4 || x[1] != w[1] * s.groups() || w[0] % s.groups() != 0
                    || w[2] != s.kH() || w[3] != s.kW()) {
                throw new ND4JIllegalStateException("oneDNN convolution: input " + Arrays.toString(x)
                        + " and weights " + Arrays.toString(w) + " do not fit " + s);
            }
            return List.of(new long[]{x[0], w[0], s.outH(x[2]), s.outW(x[3])});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            INDArray x = in.get(0);
            Dnnl.execute(Dnnl.Kind.FORWARD, shape(x.size(0), x.size(1), x.size(2), x.size(3), in.get(1).size(0), spec()),
                    x, in.get(1), out.get(0));
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            SDVariable g = grads.get(0);
            SDVariable x = arg(0);
            SDVariable w = arg(1);
            Conv.Spec s = spec();
            SDVariable dx = new BackwardData(sameDiff, g, w, s, inH(), inW()).outputVariable();
            SDVariable dw = new BackwardWeights(sameDiff, x, g, s, inH(), inW()).outputVariable();
            return List.of(dx, dw);
        }
    }

    /** {@code dL/dx} from {@code dL/dy [N, O, oh, ow]} and {@code w [O, C, kH, kW]}: {@code [N, C, H, W]}. */
    public static final class BackwardData extends ConvOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_conv_bp_data";

        static {
            register(OP_NAME, new BackwardData());
        }

        /** For SameDiff's reflective re-creation only. */
        public BackwardData() {
        }

        BackwardData(SameDiff sd, SDVariable g, SDVariable weight, Conv.Spec spec, long h, long w) {
            super(sd, spec, h, w, g, weight);
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return List.of(new long[]{in.get(0)[0], in.get(1)[1] * spec().groups(), inH(), inW()});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            INDArray g = in.get(0);
            INDArray w = in.get(1);
            Conv.Spec s = spec();
            Dnnl.execute(Dnnl.Kind.BACKWARD_DATA, shape(g.size(0), w.size(1) * s.groups(), inH(), inW(), w.size(0), s),
                    g, w, out.get(0));
        }
    }

    /** {@code dL/dw} from {@code x [N, C, H, W]} and {@code dL/dy [N, O, oh, ow]}: {@code [O, C, kH, kW]}. */
    public static final class BackwardWeights extends ConvOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_conv_bp_weights";

        static {
            register(OP_NAME, new BackwardWeights());
        }

        /** For SameDiff's reflective re-creation only. */
        public BackwardWeights() {
        }

        BackwardWeights(SameDiff sd, SDVariable x, SDVariable g, Conv.Spec spec, long h, long w) {
            super(sd, spec, h, w, x, g);
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            Conv.Spec s = spec();
            return List.of(new long[]{in.get(1)[1], in.get(0)[1] / s.groups(), s.kH(), s.kW()});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            INDArray x = in.get(0);
            Dnnl.execute(Dnnl.Kind.BACKWARD_WEIGHTS,
                    shape(x.size(0), x.size(1), x.size(2), x.size(3), in.get(1).size(1), spec()), x, in.get(1),
                    out.get(0));
        }
    }
}
