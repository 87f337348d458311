package io.github.dl4jcnnplugins.ops;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * A row-major array seen as {@code [a, r, b]} for a host kernel that reduces over contiguous dimensions
 * ({@link MeanMax}): {@code r} is the product of those dimensions' sizes, {@code a} and {@code b} of the sizes before
 * and after them. Over the pixels of NCHW {@code (2, 3)}: {@code [N*C, H*W, 1]}; over the channels
 * {@code (1)}: {@code [N, C, H*W]}.
 *
 * <p>{@link #run} shares the work out on the host-op threads: slice by slice when each slice's {@code r} elements are
 * contiguous ({@code b = 1}), else by blocks of columns ({@code b} split into blocks of at most {@value #BLOCK}, each
 * walked row by row so that the block's running values stay in the first-level cache).
 */
record Slices(int a, int r, int b) {
    /** Elements a kernel works on at a time. */
    static final int BLOCK = 2048;

    /** What a kernel does with columns {@code [from, from + n)} of slice {@code i} (elements {@link #index}). */
    interface Columns {
        void run(int i, int from, int n);
    }

    /** {@code shape} seen along {@code dims} (ascending and contiguous: see {@link #contiguous}). */
    static Slices of(long[] shape, int[] dims) {
        long a = 1;
        long r = 1;
        long b = 1;
        for (int d = 0; d < shape.length; d++) {
            if (d < dims[0]) {
                a *= shape[d];
            } else if (d <= dims[dims.length - 1]) {
                r *= shape[d];
            } else {
                b *= shape[d];
            }
        }
        // HostOp.Host takes at most 2^31 - 1 elements: these products fit an int when a * r * b does
        return new Slices(Math.toIntExact(a), Math.toIntExact(r), Math.toIntExact(b));
    }

    /** Whether {@code dims} is a non-empty ascending run of consecutive dimensions. */
    static boolean contiguous(int[] dims) {
        for (int i = 1; i < dims.length; i++) {
            if (dims[i] != dims[i - 1] + 1) {
                return false;
            }
        }
        return dims.length > 0 && dims[0] >= 0;
    }

    /** {@code dims} checked by {@link #contiguous}. */
    static int[] requireContiguous(String op, int[] dims) {
        if (!contiguous(dims)) {
            throw new IllegalArgumentException(op + ": dimensions must be ascending and contiguous, got "
                    + Arrays.toString(dims));
        }
        return dims;
    }

    /** Index of element {@code (i, row, column)}. */
    int index(int i, int row, int column) {
        return (i * r + row) * b + column;
    }

    /**
     * Runs a kernel over every slice, on the host-op threads: {@code slice} with each slice's index when {@code b = 1}
     * (slice {@code i} is elements {@code [i * r, (i + 1) * r)}), else {@code columns} for each block.
     */
    void run(IntConsumer slice, Columns columns) {
        if (b == 1) {
            HostOp.parallelFor(a, slice);
            return;
        }
        int blocks = (b + BLOCK - 1) / BLOCK;
        int size = (b + blocks - 1) / blocks;   // even blocks: 3136 = 2 x 1568, not 2048 + 1088 (tasks go out in turn)
        HostOp.parallelFor(a * blocks, t -> {
            int from = t % blocks * size;
            columns.run(t / blocks, from, Math.min(size, b - from));
        });
    }
}
