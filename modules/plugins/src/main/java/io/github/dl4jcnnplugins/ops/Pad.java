package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.enums.PadMode;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Spatial padding of NCHW activations with exact gradients.
 *
 * <p>SameDiff's {@code pad} has a silently wrong gradient in REFLECT / SYMMETRIC mode in 1.0.0-M2.1, so
 * reflection and replication padding are built from width-1 slices and a concatenation, one axis at a time.
 */
public final class Pad {
    private Pad() {
    }

    /** Padding modes, named as PyTorch's pad layers. */
    public enum Mode {
        /** {@code ReflectionPad2d}: mirror without repeating the edge; needs pad < size. */
        REFLECT,
        /** {@code ReplicationPad2d}: repeat the edge value. */
        REPLICATE,
        /** {@code ZeroPad2d}. */
        ZERO;

        /** Parses PyTorch's names: reflect / refl, replicate / repl, zero. */
        public static Mode parse(String name) {
            switch (name == null ? "" : name.toLowerCase(Locale.ROOT)) {
                case "reflect":
                case "refl":
                    return REFLECT;
                case "replicate":
                case "repl":
                    return REPLICATE;
                case "zero":
                    return ZERO;
                default:
                    throw new IllegalArgumentException("unknown pad type '" + name
                            + "': expected one of reflect, refl, replicate, repl, zero");
            }
        }

        /**
         * The input index that position {@code i} of a padded axis copies ({@code i} counts from the first input
         * element, so padding before it is negative), or -1 for a zero.
         */
        public long sourceIndex(long i, long size) {
            if (i >= 0 && i < size) {
                return i;
            }
            switch (this) {
                case REFLECT:
                    return i < 0 ? -i : 2 * (size - 1) - i;
                case REPLICATE:
                    return i < 0 ? 0 : size - 1;
                default:
                    return -1;
            }
        }

        /** The largest pad this mode allows on an axis of {@code size} elements (reflection needs pad < size). */
        public long maxPad(long size) {
            return this == REFLECT ? size - 1 : Long.MAX_VALUE;
        }
    }

    /** Pads {@code x [N, C, H, W]} by {@code top, bottom} rows and {@code left, right} columns. */
    public static SDVariable pad2d(SameDiff sd, SDVariable x, long h, long w, int top, int bottom, int left, int right,
                                   Mode mode) {
        if (top == 0 && bottom == 0 && left == 0 && right == 0) {
            return x;
        }
        if (mode == Mode.ZERO) {
            SDVariable pads = sd.constant(Nd4j.createFromArray(new int[][]{{0, 0}, {0, 0}, {top, bottom}, {left, right}}));
            return sd.nn().pad(x, pads, PadMode.CONSTANT, 0.0);
        }
        SDVariable t = padAxis(sd, x, 2, h, top, bottom, mode);
        return padAxis(sd, t, 3, w, left, right, mode);
    }

    /** Reflection or replication padding along one axis, from slices and a concatenation. */
    static SDVariable padAxis(SameDiff sd, SDVariable x, int axis, long size, int before, int after, Mode mode) {
        if (before == 0 && after == 0) {
            return x;
        }
        List<SDVariable> parts = new ArrayList<>();
        for (int i = before; i >= 1; i--) {
            parts.add(slice(x, axis, mode == Mode.REFLECT ? i : 0));
        }
        parts.add(x);
        for (int i = 1; i <= after; i++) {
            parts.add(slice(x, axis, mode == Mode.REFLECT ? size - 1 - i : size - 1));
        }
        return sd.concat(axis, parts.toArray(new SDVariable[0]));
    }

    /** Index {@code i} of {@code axis}, keeping the axis (width 1). */
    static SDVariable slice(SDVariable x, int axis, long i) {
        SDIndex[] idx = {SDIndex.all(), SDIndex.all(), SDIndex.all(), SDIndex.all()};
        idx[axis] = SDIndex.interval(i, i + 1);
        return x.get(idx);
    }
}
