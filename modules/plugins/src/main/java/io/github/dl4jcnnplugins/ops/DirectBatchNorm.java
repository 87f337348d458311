package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.List;

/**
 * The training BatchNorm's normalisation with batch statistics computed by oneDNN's batch-normalization primitives,
 * called directly ({@link Dnnl}) where an ND4J oneDNN build is loaded: one forward op {@code (x, gamma, beta) ->
 * (y, mean, var)} and one backward op {@code (x, dy, mean, var, gamma, beta) -> (dx, dgamma, dbeta)}, each a single
 * oneDNN kernel on ND4J's {@code nchw} arrays.
 *
 * <p>Why: the portable form ({@link BatchMoments} / {@link ChannelStats}, {@link BatchNormKernel}) is two passes over
 * {@code x} forward and six backward (the sum and {@code dot} of the gradient, the normalisation's product, the
 * moments' gradient as a product and a sum, and the sum of the two gradients of {@code x}); oneDNN's backward reads
 * {@code x} and {@code dy} twice and writes {@code dx} once. Measured in the BENCHMARKS.md notes (GhostModule
 * fwd+bwd 73-77 -> 70 ms; oneDNN's {@code nchw} kernel itself is no faster than PyTorch's own).
 *
 * <p>Semantics are PyTorch's {@code BatchNorm2d} in training: {@code y = (x - mean) / sqrt(var + eps) * gamma + beta}
 * with the batch mean and biased variance over {@code (N, H, W)}; the gradient of {@code x} includes the paths through
 * the batch statistics. The {@code mean} and {@code var} outputs are for the running-statistics update only: they
 * carry no gradient (a graph that differentiates through them must use the portable form). Float only (oneDNN has no
 * float64 batch normalization), so the double-precision parity tests never take this route; it is checked against
 * the portable form in float ({@code DirectBatchNormTest}).
 */
public final class DirectBatchNorm {
    private DirectBatchNorm() {
    }

    /** System property: {@code false} keeps the portable BatchNorm even where oneDNN can be called. */
    public static final String PROPERTY = "dl4jcnnplugins.directBatchNorm";

    /** Whether a training BatchNorm on {@code dt} data in {@code sd} takes this route (see the class comment). */
    static boolean applies(SameDiff sd, DataType dt) {
        return DirectConv.usable(sd, dt, PROPERTY);
    }

    /** {@code {y, mean, var}} for {@code x [N, C, H, W]}, {@code gamma}, {@code beta} {@code [C]}; see the class comment. */
    static SDVariable[] train(SameDiff sd, SDVariable x, SDVariable gamma, SDVariable beta, double eps) {
        return new Forward(sd, x, gamma, beta, eps).outputVariables();
    }

    private static Dnnl.NormShape shape(INDArray x, double eps) {
        if (x.rank() != 4) {
            throw new ND4JIllegalStateException("oneDNN batch normalization: an [N, C, H, W] array expected, got "
                    + java.util.Arrays.toString(x.shape()));
        }
        return new Dnnl.NormShape(x.size(0), x.size(1), x.size(2), x.size(3), (float) eps);
    }

    /** {@code (x, gamma, beta) -> (y, mean, var)}; the epsilon is the op's one floating-point argument. */
    public static final class Forward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_batchnorm";

        static {
            register(OP_NAME, new Forward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Forward() {
        }

        Forward(SameDiff sd, SDVariable x, SDVariable gamma, SDVariable beta, double eps) {
            super(sd, x, gamma, beta);
            addTArgument(eps);
        }

        @Override
        public int getNumOutputs() {
            return 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            return List.of(x.clone(), new long[]{x[1]}, new long[]{x[1]});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Dnnl.batchNorm(Dnnl.NormKind.FORWARD, shape(in.get(0), tArguments.get(0)), in.get(0), in.get(1),
                    in.get(2), out.get(0), out.get(1), out.get(2));
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            SDVariable[] o = outputVariables();
            SDVariable[] d = new Backward(sameDiff, arg(0), grads.get(0), o[1], o[2], arg(1), arg(2),
                    tArguments.get(0)).outputVariables();
            return List.of(d);
        }
    }

    /** {@code (x, dy, mean, var, gamma, beta) -> (dx, dgamma, dbeta)}. */
    public static final class Backward extends HostOp {
        public static final String OP_NAME = "dl4jcnnplugins_dnnl_batchnorm_bp";

        static {
            register(OP_NAME, new Backward());
        }

        /** For SameDiff's reflective re-creation only. */
        public Backward() {
        }

        Backward(SameDiff sd, SDVariable x, SDVariable g, SDVariable mean, SDVariable var, SDVariable gamma,
                 SDVariable beta, double eps) {
            super(sd, x, g, mean, var, gamma, beta);
            addTArgument(eps);
        }

        @Override
        public int getNumOutputs() {
            return 3;
        }

        @Override
        protected List<long[]> outputShapes(List<long[]> in) {
            long[] x = in.get(0);
            return List.of(x.clone(), new long[]{x[1]}, new long[]{x[1]});
        }

        @Override
        public void compute(List<INDArray> in, List<INDArray> out) {
            Dnnl.batchNorm(Dnnl.NormKind.BACKWARD, shape(in.get(0), tArguments.get(0)), in.get(0), in.get(1),
                    in.get(2), in.get(3), in.get(4), in.get(5), out.get(0), out.get(1), out.get(2));
        }

        @Override
        public List<SDVariable> doDiff(List<SDVariable> grads) {
            throw new UnsupportedOperationException(OP_NAME + ": second derivatives are not supported");
        }
    }
}
