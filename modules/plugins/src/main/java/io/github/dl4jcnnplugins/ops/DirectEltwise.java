package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/**
 * ReLU and SiLU computed by oneDNN's element-wise primitives, called directly ({@link Dnnl}) where an ND4J oneDNN
 * build is loaded: one pass forward, one pass backward ({@code dx = f'(x) g} from {@code x} and {@code g}).
 *
 * <p>Why: the portable forms take more passes over the tensor. SiLU as {@code x * sigmoid(x)} is two kernels forward
 * and, backward, the product's two gradient products, {@code sigmoid_bp} and a sum; libnd4j's own fused
 * {@code swish} derivative computes {@code e^x} squared and turns into NaN for float inputs above about 44. ReLU's
 * gradient is {@code step} and a product ({@link Relu}). Float only, like every oneDNN route here; double-precision
 * graphs (the parity tests) keep the portable forms, and this is checked against them in float
 * ({@code DirectEltwiseTest}).
 */
public final class DirectEltwise {
    private DirectEltwise() {
    }

    /** System property: {@code false} keeps the portable forms even where oneDNN can be called. */
    public static final String PROPERTY = "dl4jcnnplugins.directEltwise";

    /** Whether an element-wise function on {@code dt} data in {@code sd} takes this route. */
    static boolean applies(SameDiff sd, DataType dt) {
        return DirectConv.usable(sd, dt, PROPERTY);
    }

    /** {@code f(x)}, any shape. */
    static SDVariable apply(SameDiff sd, SDVariable x, Dnnl.Eltwise f) {
        return new Forward(sd, x, f).outputVariable();
    }

    private static Dnnl.Eltwise function(long[] iArgs) {
        return Dnnl.Eltwise.values()[(int) iArgs[0]];
    }

    /** {@code y = f(x)}; the function is the op's integer argument (its {@link Dnnl.Eltwise} ordinal). */
    public static final class Forward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_eltwise";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, Dnnl.Eltwise f) {
            super(sd, x);
            addIArgument(f.ordinal());
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return List.of(in.get(0).clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Dnnl.eltwise(function(iArgs()), in.get(0), out.get(0));
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            return List.of(new Backward(sameDiff, arg(), grads.get(0), function(iArgs())).outputVariable());
        }
    }

    /** {@code dx = f'(x) g} from {@code (x, g)}. */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_eltwise_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable x, SDVariable g, Dnnl.Eltwise f) {
            super(sd, x, g);
            addIArgument(f.ordinal());
        }

        @Override
        public int getNumOutputs() {
            return 1;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            return List.of(in.get(0).clone());
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Dnnl.eltwiseBackward(function(iArgs()), in.get(0), in.get(1), out.get(0));
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives are not supported");
        }
    }
}
