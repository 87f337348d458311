package io.github.dl4jcnnplugins.torch;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * The one definition of "matches the PyTorch reference" used by the tests and by {@code bin/plugins forward}:
 * {@code max |ours - ref| / max(max |ref|, MIN_SCALE)} per array, at most {@link #TOLERANCE}.
 *
 * <p>The floor {@link #MIN_SCALE} matters for arrays that are zero up to rounding in both implementations
 * (e.g. the bias gradient of a BatchNorm feeding another BatchNorm through linear ops only, about 1e-15 on
 * both sides): relative to their own size such arrays are pure noise, so they must match to
 * {@code TOLERANCE * MIN_SCALE} absolutely instead.
 */
public final class Parity {
    /** Required agreement, relative, in double precision. */
    public static final double TOLERANCE = 1e-6;
    /** Smallest reference magnitude that the error is taken relative to. */
    public static final double MIN_SCALE = 1e-6;

    private Parity() {
    }

    /**
     * {@code max |actual - expected| / max(max |expected|, MIN_SCALE)}; NaN if the shapes differ or
     * {@code actual} holds a NaN or an infinity.
     */
    public static double error(INDArray expected, INDArray actual) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            return Double.NaN;
        }
        INDArray a = actual.castTo(DataType.DOUBLE);
        if (a.isNaN().any() || a.isInfinite().any()) {
            return Double.NaN;
        }
        INDArray e = expected.castTo(DataType.DOUBLE);
        double diff = e.sub(a).amaxNumber().doubleValue();
        return diff / Math.max(e.amaxNumber().doubleValue(), MIN_SCALE);
    }

    /** Whether {@link #error} is within {@link #TOLERANCE} (false for NaN). */
    public static boolean matches(INDArray expected, INDArray actual) {
        return error(expected, actual) <= TOLERANCE;
    }
}
