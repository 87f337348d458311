package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

import java.util.Collections;
import java.util.List;

/**
 * {@code max(x, 0)} for plug-in graphs, with the gradient {@code g * step(y)} ({@code y} the output: {@code y > 0}
 * exactly where {@code x > 0}).
 *
 * <p>SameDiff differentiates its {@code relu} through libnd4j's {@code thresholdedrelu_bp}, which in 1.0.0-M2.1 took
 * ~23 ms per call on GhostModule's {@code [8, 128, 56, 56]} float tensors (2 threads, op profile), several times the
 * cost of the two streaming kernels used here ({@code step} and {@code multiply}). The forward pass is libnd4j's
 * {@code relu} kernel (see {@link NativeAlias}). Float plug-in graphs with oneDNN take {@link DirectEltwise} instead
 * (one pass backward).
 */
public class Relu extends NativeAlias {
    /** Op name under which SameDiff re-creates this class; not a native op name. */
    public static final String OP_NAME = "dl4jcnnplugins_relu";

    static {
        register(OP_NAME, new Relu());
    }

    /** For SameDiff's reflective re-creation only. */
    public Relu() {
    }

    private Relu(SameDiff sd, SDVariable x) {
        super(sd, x);
        addTArgument(0.0);   // the kernel's threshold
    }

    /** {@code max(x, 0)}. */
    public static SDVariable apply(SameDiff sd, SDVariable x) {
        if (DirectEltwise.applies(sd, x.dataType())) {
            return DirectEltwise.apply(sd, x, Dnnl.Eltwise.RELU);
        }
        return new Relu(sd, x).outputVariable();
    }

    @Override
    public String opName() {
        return OP_NAME;
    }

    @Override
    protected String nativeName() {
        return "relu";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        return Collections.singletonList(grads.get(0).mul(sameDiff.math().step(outputVariable(), 0.0)));
    }
}
