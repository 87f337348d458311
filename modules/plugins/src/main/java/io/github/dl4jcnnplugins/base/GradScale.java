package io.github.dl4jcnnplugins.base;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.util.SameDiffUtils;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.ExternalErrorsFunction;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/**
 * Measures, once per JVM, the factor by which SameDiff scales gradients that enter a graph through an
 * {@link ExternalErrorsFunction} (the mechanism DL4J's SameDiff layers and vertices use).
 *
 * <p>In DL4J / ND4J 1.0.0-M2.1 the factor is exactly 2: {@code ExternalErrorsFunction.doDiff} both registers
 * and returns the gradient placeholder, and {@code DifferentialFunction.diff()} adds the two. Our runtime
 * classes divide by the measured factor, so that a DL4J release that fixes the bug (factor 1) is not halved.
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
