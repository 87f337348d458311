package io.github.dl4jcnnplugins.ops;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** Reads a strategy switch from a system property: an enum constant by name, case-insensitive, {@code -} for {@code _}. */
final class EnumProperty {
    private EnumProperty() {
    }

    /**
     * The constant of {@code type} named by {@code value} (the value of system property {@code property}), or
     * {@code fallback} when it is unset or blank; a clear error naming the property and the accepted values otherwise.
     */
    static <E extends Enum<E>> E parse(String property, String value, Class<E> type, E fallback) {
        if (value == null || value.isBlank()) {
            return fallback;
        }
        try {
            return Enum.valueOf(type, value.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            String accepted = Arrays.stream(type.getEnumConstants()).map(c -> c.name().toLowerCase(Locale.ROOT))
                    .collect(Collectors.joining(", "));
            throw new IllegalArgumentException("invalid value for system property " + property
                    + ": expected one of " + accepted + "; got '" + value + "'");
        }
    }

    /** A strategy switch: its initial value from a system property ({@link #parse}), changeable at run time. */
    static final class Setting<E extends Enum<E>> {
        private final String what;
        private volatile E value;

        Setting(String property, Class<E> type, E fallback, String what) {
            this.value = parse(property, System.getProperty(property), type, fallback);
            this.what = what;
        }

        E get() {
            return value;
        }

        void set(E strategy) {
            if (strategy == null) {
                throw new IllegalArgumentException(what + " must not be null");
            }
            value = strategy;
        }
    }
}
