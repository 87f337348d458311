package io.github.dl4jcnnplugins.base;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.autodiff.util.SameDiffUtils;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.ExternalErrorsFunction;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Measures, once per JVM, the factor by which SameDiff scales gradients that enter a graph through an
 * {@link ExternalErrorsFunction} (the mechanism DL4J's SameDiff layers and vertices use).
 *
 * <p>In DL4J / ND4J 1.0.0-M2.1 the factor is exactly 2: {@code ExternalErrorsFunction.doDiff} both registers
 * and returns the gradient placeholder, and {@code DifferentialFunction.diff()} adds the two. Our runtime
 * classes divide by the measured factor, so that a DL4J release that fixes the bug (factor 1) is not halved.
 *
 * <p>Better than dividing is not doubling: {@link #undoDoubling} rewires a built gradient function so that the ops that
 * read the doubled gradient ({@code add(eps, eps)}) read the placeholder itself. That saves the {@code add} and the
 * division, two passes over an output-sized array per backward pass.
 */
public final class GradScale {
    private static volatile Double factor;

    private GradScale() {
    }

    /** The measured factor: 2.0 on 1.0.0-M2.1, 1.0 on a release without the bug. */
    public static double externalErrorsFactor() {
        Double f = factor;
        if (f == null) {
            synchronized (GradScale.class) {
                if (factor == null) {
                    factor = QuietStdout.call(GradScale::measure);
                }
                f = factor;
            }
        }
        return f;
    }

    /**
     * In the gradient function of {@code sd} (already created), makes every op that reads {@code add(eps, eps)}, the
     * doubled external gradient, read the placeholder {@code eps} itself. The {@code add} is left unused (SameDiff runs
     * only the ops an output needs). Nothing changes, and {@code false} is returned, when the gradient function has no
     * such op (a DL4J release without the bug) or when the doubled array is itself the gradient of one of
     * {@code requested} (then the caller must divide by {@link #externalErrorsFactor()} as before).
     *
     * @return whether the gradient that enters through {@code eps} now enters undoubled (factor 1)
     */
    public static boolean undoDoubling(SameDiff sd, String eps, Collection<String> requested) {
        SameDiff grad = sd.getFunction("grad");
        if (grad == null || !grad.getVariables().containsKey(eps)) {
            return false;
        }
        SameDiffOp doubling = null;
        for (SameDiffOp op : grad.getOps().values()) {
            List<String> in = op.getInputsToOp();
            if (in != null && in.size() == 2 && eps.equals(in.get(0)) && eps.equals(in.get(1))
                    && "add".equals(op.getOp().opName()) && op.getOutputsOfOp().size() == 1) {
                if (doubling != null) {
                    return false;   // not the single add the M2.1 bug creates
                }
                doubling = op;
            }
        }
        if (doubling == null) {
            return false;
        }
        String doubled = doubling.getOutputsOfOp().get(0);
        for (String r : requested) {
            SDVariable g = sd.getVariable(r).dataType().isFPType() ? sd.getGradForVariable(r) : null;
            if (g != null && doubled.equals(g.name())) {
                return false;
            }
        }
        Variable epsVar = grad.getVariables().get(eps);
        Variable doubledVar = grad.getVariables().get(doubled);
        List<String> consumers = doubledVar.getInputsForOp() == null ? List.of() : new ArrayList<>(doubledVar.getInputsForOp());
        List<String> epsConsumers = epsVar.getInputsForOp() == null ? new ArrayList<>() : new ArrayList<>(epsVar.getInputsForOp());
        for (String opName : consumers) {
            SameDiffOp op = grad.getOps().get(opName);
            List<String> in = new ArrayList<>(op.getInputsToOp());
            in.replaceAll(n -> n.equals(doubled) ? eps : n);
            op.setInputsToOp(in);
            epsConsumers.add(opName);
        }
        epsVar.setInputsForOp(epsConsumers);
        doubledVar.setInputsForOp(new ArrayList<>());
        return true;
    }

    private static double measure() {
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("in", DataType.DOUBLE, -1, 2);
        SDVariable out = in.mul(1.0);
        ExternalErrorsFunction fn = SameDiffUtils.externalErrors(sd, null, out);
        fn.outputVariable();
        sd.createGradFunction("in");
        Map<String, INDArray> ph = new HashMap<>();
        ph.put("in", Nd4j.ones(DataType.DOUBLE, 1, 2));
        ph.put(fn.getGradPlaceholderName(), Nd4j.ones(DataType.DOUBLE, 1, 2));
        Map<String, INDArray> g = sd.calculateGradients(ph, Collections.singletonList("in"));
        double v = g.get("in").getDouble(0);
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalStateException("dl4j-cnn-plugins: could not measure SameDiff's external-gradient factor (got " + v + ")");
        }
        return v;
    }
}
