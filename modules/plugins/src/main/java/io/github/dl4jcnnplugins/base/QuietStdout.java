package io.github.dl4jcnnplugins.base;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * Runs a block while dropping the {@code "Added differentiated op ..."} lines that
 * {@code SameDiff.createGradFunction} prints unconditionally to {@code System.out} in 1.0.0-M2.1.
 * Every other line passes through unchanged. {@code System.out} is restored in {@code finally}.
 */
public final class QuietStdout {
    static final String NOISE_PREFIX = "Added differentiated op";

    private QuietStdout() {
    }

    public static synchronized <T> T call(Supplier<T> block) {
        PrintStream original = System.out;
        System.setOut(new PrintStream(new LineFilter(original), true, StandardCharsets.UTF_8));
        try {
            return block.get();
        } finally {
            System.out.flush();
            System.setOut(original);
        }
    }

    public static void run(Runnable block) {
        call(() -> {
            block.run();
            return null;
        });
    }

    /** Line-buffered filter that drops SameDiff's per-op lines. */
    static final class LineFilter extends OutputStream {
        private final PrintStream target;
        private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

        LineFilter(PrintStream target) {
            this.target = target;
        }

        @Override
        public void write(int b) {
            line.write(b);
            if (b == '\n') {
                emit();
            }
        }

        @Override
        public void flush() {
            emit();
            target.flush();
        }

        private void emit() {
            if (line.size() == 0) {
                return;
            }
            String s = line.toString(StandardCharsets.UTF_8);
            line.reset();
            if (!s.startsWith(NOISE_PREFIX)) {
                target.print(s);
            }
        }
    }
}
