package io.github.dl4jcnnplugins.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code bench}'s test for a settled JIT: less than 2% of the last window spent compiling. */
class QuietWindowTest {
    private static final long MS = 1_000_000L;

    @Test
    void quietOnlyAFullWindowAfterTheCompilerStopped() {
        BenchCommand.QuietWindow q = new BenchCommand.QuietWindow(3000 * MS);
        long compiled = 0;
        // 5 s of heavy compiling (half of the wall clock), then none; one sample every 100 ms
        for (int t = 0; t <= 5000; t += 100) {
            compiled = t / 2;
            assertFalse(q.record(t * MS, compiled), "compiling at " + t + " ms");
        }
        // the window starts at the newest sample at least 3 s old: at 7800 ms that is 4800 ms, with 100 ms of
        // compiling after it (3.3%); at 7900 ms 4900 ms, 50 ms (1.7%)
        for (int t = 5100; t <= 7800; t += 100) {
            assertFalse(q.record(t * MS, compiled), "the last 3 s still hold >= 2% compiling at " + t + " ms");
        }
        assertTrue(q.record(7900 * MS, compiled));
        assertTrue(q.record(8000 * MS, compiled));
    }

    @Test
    void thresholdIsTwoPercentOfTheWindow() {
        BenchCommand.QuietWindow slow = new BenchCommand.QuietWindow(3000 * MS);
        BenchCommand.QuietWindow busy = new BenchCommand.QuietWindow(3000 * MS);
        boolean slowQuiet = false;
        boolean busyQuiet = false;
        for (int t = 0; t <= 10000; t += 100) {
            slowQuiet = slow.record(t * MS, t / 100);     // 1% of the wall clock compiling
            busyQuiet = busy.record(t * MS, t * 3 / 100); // 3%
        }
        assertTrue(slowQuiet);
        assertFalse(busyQuiet);
    }

    @Test
    void neverQuietBeforeAWholeWindowWasSeen() {
        BenchCommand.QuietWindow q = new BenchCommand.QuietWindow(3000 * MS);
        for (int t = 0; t < 3000; t += 500) {
            assertFalse(q.record(t * MS, 0), "at " + t + " ms");
        }
        assertTrue(q.record(3000 * MS, 0));
    }
}
