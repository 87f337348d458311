package io.github.dl4jcnnplugins.ops;

import io.github.dl4jcnnplugins.base.PluginLayer;

/** Hyper-parameter and size checks with messages in one form: {@code <layer>: invalid value for `x` ...}. */
public final class Shapes {
    private Shapes() {
    }

    public static void requirePositive(PluginLayer layer, String name, long value) {
        if (value < 1) {
            throw new IllegalArgumentException(layer.label() + ": invalid value for `" + name
                    + "`: expected a strictly positive value; got " + name + "=" + value);
        }
    }

    public static void requireNonNegative(PluginLayer layer, String name, long value) {
        if (value < 0) {
            throw new IllegalArgumentException(layer.label() + ": invalid value for `" + name
                    + "`: expected a value >= 0; got " + name + "=" + value);
        }
    }

    /** Requires {@code height >= minH} and {@code width >= minW}. */
    public static void requireSpatial(PluginLayer layer, long height, long width, long minH, long minW) {
        if (height < minH || width < minW) {
            throw new IllegalArgumentException(layer.label() + ": input too small: needs height >= " + minH
                    + " and width >= " + minW + "; got " + height + "x" + width);
        }
    }

    /** Requires a computed output size to be at least 1 on both axes. */
    public static void requireOutput(PluginLayer layer, long inH, long inW, long outH, long outW) {
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException(layer.label() + ": input " + inH + "x" + inW
                    + " is too small: the output would be " + outH + "x" + outW);
        }
    }
}
