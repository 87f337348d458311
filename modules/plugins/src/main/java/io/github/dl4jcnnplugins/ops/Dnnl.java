package io.github.dl4jcnnplugins.ops;

import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_convolution_desc_t;
import org.bytedeco.dnnl.dnnl_eltwise_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

import static org.bytedeco.dnnl.global.dnnl.*;

/**
 * The few calls of oneDNN's C API (through JavaCPP's {@code org.bytedeco:dnnl} bindings, the same {@code libdnnl}
 * that ND4J's oneDNN builds load) that {@link DirectConv} and {@link DirectEltwise} need: one CPU engine, a stream
 * per thread, convolution primitives created once per shape and kept, in the layouts oneDNN chooses (with reorders
 * from and to ND4J's plain {@code nchw} / {@code oihw} arrays where they differ), element-wise primitives on
 * plain arrays, and execution on ND4J's host memory. Only touched once
 * {@link DirectConv#available()} has found the classes and the library.
 */
final class Dnnl {
    private Dnnl() {
    }

    private static final dnnl_engine ENGINE = createEngine();
    private static final ThreadLocal<dnnl_stream> STREAM = ThreadLocal.withInitial(() -> {
        dnnl_stream s = new dnnl_stream();
        check(dnnl_stream_create(s, ENGINE, dnnl_stream_default_flags), "stream_create");
        return s;
    });

    /**
     * Which convolution primitive, and its three arrays in {@link #execute}'s order (the two inputs, then the output):
     * which of source, weights and destination each is ({@code roles}: 0, 1, 2), its execution argument and the
     * query for the layout oneDNN chose for it.
     */
    enum Kind {
        FORWARD(new int[]{0, 1, 2}, new int[]{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                new int[]{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md}),
        BACKWARD_DATA(new int[]{2, 1, 0}, new int[]{DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
                new int[]{dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md}),
        BACKWARD_WEIGHTS(new int[]{0, 2, 1}, new int[]{DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
                new int[]{dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md});

        private final int[] roles;
        private final int[] args;
        private final int[] queries;

        Kind(int[] roles, int[] args, int[] queries) {
            this.roles = roles;
            this.args = args;
            this.queries = queries;
        }
    }

    /**
     * One convolution: {@code x [n, c, h, w]}, weights {@code [o, c / g, kH, kW]}, output {@code [n, o, oh, ow]};
     * stride, left/top padding and dilation (PyTorch's: 1 = none) per axis, {@code g} groups.
     */
    record Shape(long n, long c, long h, long w, long o, int kH, int kW, int sH, int sW, int pH, int pW, int dH,
                 int dW, int g) {
        long oh() {
            return Conv.Spec.outSize(h, kH, sH, pH, dH);
        }

        long ow() {
            return Conv.Spec.outSize(w, kW, sW, pW, dW);
        }

        long[] src() {
            return new long[]{n, c, h, w};
        }

        /** PyTorch's {@code [o, c / g, kH, kW]}; grouped, the same memory as oneDNN's {@code [g, o / g, c / g, kH, kW]}. */
        long[] weights() {
            return g == 1 ? new long[]{o, c, kH, kW} : new long[]{g, o / g, c / g, kH, kW};
        }

        int weightsTag() {
            return g == 1 ? dnnl_oihw : dnnl_goihw;
        }

        long[] dst() {
            return new long[]{n, o, oh(), ow()};
        }

        /** oneDNN's right/bottom padding: what makes its output size formula give {@code oh, ow}. */
        long[] paddingR() {
            return new long[]{(oh() - 1) * sH + (long) (kH - 1) * dH + 1 - h - pH,
                    (ow() - 1) * sW + (long) (kW - 1) * dW + 1 - w - pW};
        }
    }

    /**
     * A created primitive with the plain layouts of its three arrays and, for each array whose layout oneDNN chose
     * otherwise, a reorder (plain to chosen for an input, chosen to plain for the output) and a buffer in the chosen
     * layout, kept with the primitive (so the primitive runs one call at a time); all in {@link #execute}'s order.
     */
    private record Primitive(dnnl_primitive primitive, dnnl_primitive_desc desc, String impl,
                             dnnl_memory_desc_t[] plains, dnnl_primitive[] reorders, dnnl_memory[] chosen) {
    }

    private record Key(Kind kind, Shape shape) {
    }

    private static final Map<Key, Primitive> PRIMITIVES = new ConcurrentHashMap<>();

    private static dnnl_engine createEngine() {
        dnnl_engine e = new dnnl_engine();
        check(dnnl_engine_create(e, dnnl_cpu, 0), "engine_create");
        return e;
    }

    static void check(int status, String what) {
        if (status != dnnl_success) {
            throw new ND4JIllegalStateException("oneDNN " + what + " failed with status " + status);
        }
    }

    private static dnnl_memory_desc_t plain(long[] dims, int tag) {
        dnnl_memory_desc_t md = new dnnl_memory_desc_t();
        check(dnnl_memory_desc_init_by_tag(md, dims.length, dims, dnnl_f32, tag), "memory_desc_init_by_tag");
        return md;
    }

    /** The implementation oneDNN picked for {@code kind} on {@code shape} (e.g. {@code x64:gemm:jit}). */
    static String implementation(Kind kind, Shape shape) {
        return primitive(kind, shape).impl();
    }

    /** Whether the {@code kind} primitive of {@code shape} works on layouts other than ND4J's (reorders around it). */
    static boolean reorders(Kind kind, Shape shape) {
        for (dnnl_primitive r : primitive(kind, shape).reorders()) {
            if (r != null) {
                return true;
            }
        }
        return false;
    }

    private static Primitive primitive(Kind kind, Shape s) {
        Primitive p = PRIMITIVES.get(new Key(kind, s));
        if (p != null) {
            return p;
        }
        if (kind != Kind.FORWARD) {
            primitive(Kind.FORWARD, s);           // the backward descriptors need the forward one as a hint
        }
        return PRIMITIVES.computeIfAbsent(new Key(kind, s), k -> create(kind, s));
    }

    private static Primitive create(Kind kind, Shape s) {
        dnnl_memory_desc_t src = plain(s.src(), dnnl_nchw);
        dnnl_memory_desc_t wei = plain(s.weights(), s.weightsTag());
        dnnl_memory_desc_t dst = plain(s.dst(), dnnl_nchw);
        // Layouts: for kernels larger than 1x1 oneDNN chooses them (for dilated 3x3 backward passes its blocked-layout
        // kernels, jit:avx512_common here, took half the time of the plain-layout GEMM, reorders included: ASPP
        // fwd+bwd 260 -> 205-221 ms); 1x1 kernels keep ND4J's plain ones (one GEMM per image on the arrays as they
        // are; with chosen layouts GhostModule was 85 -> 91 ms)
        boolean choose = (long) s.kH() * s.kW() > 1;
        dnnl_memory_desc_t srcAny = choose ? plain(s.src(), dnnl_format_tag_any) : src;
        dnnl_memory_desc_t weiAny = choose ? plain(s.weights(), dnnl_format_tag_any) : wei;
        dnnl_memory_desc_t dstAny = choose ? plain(s.dst(), dnnl_format_tag_any) : dst;
        long[] strides = {s.sH(), s.sW()};
        long[] dilates = {s.dH() - 1, s.dW() - 1};           // oneDNN counts the inserted zeros
        long[] padL = {s.pH(), s.pW()};
        long[] padR = s.paddingR();
        dnnl_convolution_desc_t cd = new dnnl_convolution_desc_t();
        switch (kind) {
            case FORWARD -> check(dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training,
                    dnnl_convolution_direct, srcAny, weiAny, null, dstAny, strides, dilates, padL, padR),
                    "convolution desc");
            case BACKWARD_DATA -> check(dnnl_dilated_convolution_backward_data_desc_init(cd, dnnl_convolution_direct,
                    srcAny, weiAny, dstAny, strides, dilates, padL, padR), "convolution backward-data desc");
            case BACKWARD_WEIGHTS -> check(dnnl_dilated_convolution_backward_weights_desc_init(cd,
                    dnnl_convolution_direct, srcAny, weiAny, null, dstAny, strides, dilates, padL, padR),
                    "convolution backward-weights desc");
        }
        dnnl_primitive_desc hint = kind == Kind.FORWARD ? null : primitive(Kind.FORWARD, s).desc();
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(cd), null, ENGINE, hint),
                "primitive_desc_create (" + kind + " " + s + ")");
        PointerPointer<?> info = new PointerPointer<>(1);
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, info), "impl_info_str");
        String impl = info.getString(0);
        dnnl_memory_desc_t[] byRole = {src, wei, dst};
        dnnl_memory_desc_t[] plains = new dnnl_memory_desc_t[3];
        for (int i = 0; i < 3; i++) {
            plains[i] = byRole[kind.roles[i]];
        }
        dnnl_primitive[] reorders = new dnnl_primitive[3];
        dnnl_memory[] chosen = new dnnl_memory[3];
        for (int i = 0; i < 3; i++) {
            dnnl_memory_desc_t md = dnnl_primitive_desc_query_md(pd, kind.queries[i], 0);
            if (dnnl_memory_desc_equal(md, plains[i]) != 0) {
                continue;
            }
            // a copy of the chosen descriptor (the queried one belongs to the primitive descriptor)
            dnnl_memory_desc_t own = new dnnl_memory_desc_t();
            Pointer.memcpy(own, md, own.sizeof());
            Pointer buffer = Pointer.malloc(dnnl_memory_desc_get_size(own));
            if (buffer.isNull()) {
                throw new ND4JIllegalStateException("oneDNN convolution: out of memory for a reorder buffer");
            }
            chosen[i] = new dnnl_memory();
            check(dnnl_memory_create(chosen[i], own, ENGINE, buffer), "memory_create");
            dnnl_primitive_desc rpd = new dnnl_primitive_desc();
            check(i < 2 ? dnnl_reorder_primitive_desc_create(rpd, plains[i], ENGINE, own, ENGINE, null)
                    : dnnl_reorder_primitive_desc_create(rpd, own, ENGINE, plains[i], ENGINE, null), "reorder desc");
            reorders[i] = new dnnl_primitive();
            check(dnnl_primitive_create(reorders[i], rpd), "reorder primitive");
        }
        dnnl_primitive p = new dnnl_primitive();
        check(dnnl_primitive_create(p, pd), "primitive_create");
        return new Primitive(p, pd, impl, plains, reorders, chosen);
    }

    /**
     * Runs the {@code kind} primitive of {@code shape}: forward {@code (x, w) -> y}, backward data
     * {@code (gy, w) -> gx}, backward weights {@code (x, gy) -> gw}. Every array row-major, float; the output is
     * written in place.
     */
    static void execute(Kind kind, Shape shape, INDArray a, INDArray b, INDArray out) {
        Primitive p = primitive(kind, shape);
        withMemories(p.plains(), new INDArray[]{a, b, out}, 2, mems -> {
            dnnl_stream stream = STREAM.get();
            try (dnnl_exec_arg_t list = new dnnl_exec_arg_t(3)) {
                synchronized (p) {
                    for (int i = 0; i < 2; i++) {
                        if (p.reorders()[i] != null) {
                            reorder(p.reorders()[i], stream, mems[i], p.chosen()[i]);
                        }
                    }
                    for (int i = 0; i < 3; i++) {
                        list.position(i).arg(kind.args[i]).memory(p.chosen()[i] != null ? p.chosen()[i] : mems[i]);
                    }
                    check(dnnl_primitive_execute(p.primitive(), stream, 3, list.position(0)), "primitive_execute");
                    if (p.reorders()[2] != null) {
                        reorder(p.reorders()[2], stream, p.chosen()[2], mems[2]);
                    }
                    check(dnnl_stream_wait(stream), "stream_wait");
                }
            }
        });
    }

    /**
     * Binds {@code arrays} to oneDNN memories with the descriptors {@code mds}, runs {@code body} on them and destroys
     * them. The first {@code inputs} arrays are inputs, read through a row-major copy where they are views of another
     * order; the others are outputs, written in place, so they must be row-major. Every array must be float.
     */
    private static void withMemories(dnnl_memory_desc_t[] mds, INDArray[] arrays, int inputs,
                                     Consumer<dnnl_memory[]> body) {
        dnnl_memory[] mems = new dnnl_memory[arrays.length];
        try {
            for (int i = 0; i < arrays.length; i++) {
                INDArray a = i < inputs ? HostOp.rowMajorCopy(arrays[i]) : arrays[i];
                if (a.dataType() != DataType.FLOAT) {
                    throw new ND4JIllegalStateException("oneDNN called directly: float arrays only, got "
                            + a.dataType());
                }
                if (!HostOp.rowMajor(a)) {
                    throw new ND4JIllegalStateException("oneDNN called directly: output array is not row-major");
                }
                mems[i] = new dnnl_memory();
                check(dnnl_memory_create(mems[i], mds[i], ENGINE, address(a)), "memory_create");
            }
            body.accept(mems);
        } finally {
            for (dnnl_memory m : mems) {
                if (m != null && !m.isNull()) {
                    dnnl_memory_destroy(m);
                }
            }
        }
    }

    // ------------------------------------------------------------------ primitives on plain arrays

    /**
     * A primitive that runs on ND4J's plain row-major arrays as they are (no reorders): its execution arguments in
     * {@link #run}'s order (the first {@code inputs} of them inputs) and their memory descriptors.
     */
    private record Plain(dnnl_primitive primitive, dnnl_primitive_desc desc, int inputs, int[] args,
                         dnnl_memory_desc_t[] mds) {
    }

    private static final Map<Object, Plain> PLAINS = new ConcurrentHashMap<>();

    /** The primitive for {@code key}, created by {@code create} once and kept. */
    private static Plain plain(Object key, java.util.function.Supplier<Plain> create) {
        Plain p = PLAINS.get(key);
        return p != null ? p : PLAINS.computeIfAbsent(key, k -> create.get());
    }

    /**
     * Creates the primitive of {@code op} (hinted by {@code hint} for a backward pass) whose execution arguments
     * {@code args} have the plain descriptors {@code mds}; checks that oneDNN takes them as they are.
     */
    private static Plain createPlain(Pointer op, dnnl_primitive_desc hint, String what, int inputs, int[] args,
                                     dnnl_memory_desc_t[] mds) {
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(op), null, ENGINE, hint),
                "primitive_desc_create (" + what + ")");
        for (int i = 0; i < args.length; i++) {
            dnnl_memory_desc_t md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
            if (md == null || md.isNull() || dnnl_memory_desc_equal(md, mds[i]) == 0) {
                throw new ND4JIllegalStateException("oneDNN " + what + ": argument " + args[i]
                        + " is not a plain array here (" + (md == null || md.isNull() ? "unused" : "ndims "
                        + md.ndims() + ", format kind " + md.format_kind()) + ")");
            }
        }
        dnnl_primitive p = new dnnl_primitive();
        check(dnnl_primitive_create(p, pd), "primitive_create");
        return new Plain(p, pd, inputs, args, mds);
    }

    /**
     * Runs {@code p} on {@code arrays} (in its argument order, inputs then outputs; float; inputs are read through a
     * row-major copy where they are views of another order, outputs must be row-major and are written in place).
     */
    private static void run(Plain p, INDArray... arrays) {
        withMemories(p.mds(), arrays, p.inputs(), mems -> {
            try (dnnl_exec_arg_t list = new dnnl_exec_arg_t(mems.length)) {
                for (int i = 0; i < mems.length; i++) {
                    list.position(i).arg(p.args()[i]).memory(mems[i]);
                }
                dnnl_stream stream = STREAM.get();
                check(dnnl_primitive_execute(p.primitive(), stream, mems.length, list.position(0)),
                        "primitive_execute");
                check(dnnl_stream_wait(stream), "stream_wait");
            }
        });
    }

    // ------------------------------------------------------------------ element-wise functions

    /** Element-wise functions, by oneDNN algorithm and its alpha. */
    enum Eltwise {
        /** {@code max(x, 0)}. */
        RELU(dnnl_eltwise_relu, 0f),
        /** SiLU, {@code x sigmoid(x)} (oneDNN's swish with alpha 1). */
        SILU(dnnl_eltwise_swish, 1f);

        private final int alg;
        private final float alpha;

        Eltwise(int alg, float alpha) {
            this.alg = alg;
            this.alpha = alpha;
        }
    }

    private record EltwiseKey(Eltwise f, boolean backward, long length) {
    }

    private static Plain eltwise(Eltwise f, boolean backward, long length) {
        dnnl_primitive_desc hint = backward ? eltwise(f, false, length).desc() : null;
        return plain(new EltwiseKey(f, backward, length), () -> {
            dnnl_memory_desc_t data = plain(new long[]{length}, dnnl_a);
            dnnl_eltwise_desc_t ed = new dnnl_eltwise_desc_t();
            if (backward) {
                check(dnnl_eltwise_backward_desc_init(ed, f.alg, data, data, f.alpha, 0f), "eltwise backward desc");
                return createPlain(ed, hint, "eltwise backward " + f, 2,
                        new int[]{DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC},
                        new dnnl_memory_desc_t[]{data, data, data});
            }
            check(dnnl_eltwise_forward_desc_init(ed, dnnl_forward_training, f.alg, data, f.alpha, 0f), "eltwise desc");
            return createPlain(ed, null, "eltwise " + f, 1, new int[]{DNNL_ARG_SRC, DNNL_ARG_DST},
                    new dnnl_memory_desc_t[]{data, data});
        });
    }

    /** {@code y = f(x)} (any shape, as one vector). */
    static void eltwise(Eltwise f, INDArray x, INDArray y) {
        run(eltwise(f, false, x.length()), x, y);
    }

    /** {@code dx = f'(x) g}. */
    static void eltwiseBackward(Eltwise f, INDArray x, INDArray g, INDArray dx) {
        run(eltwise(f, true, x.length()), x, g, dx);
    }

    private static void reorder(dnnl_primitive reorder, dnnl_stream stream, dnnl_memory from, dnnl_memory to) {
        try (dnnl_exec_arg_t a = new dnnl_exec_arg_t(2)) {
            a.position(0).arg(DNNL_ARG_FROM).memory(from);
            a.position(1).arg(DNNL_ARG_TO).memory(to);
            check(dnnl_primitive_execute(reorder, stream, 2, a.position(0)), "reorder");
        }
    }

    /**
     * The address of element 0 of a row-major float array. ND4J's {@code data()} of a view is a buffer that already
     * starts at the view's offset (its address is the parent's plus {@code offset()} elements), so the offset is not
     * added again.
     */
    private static Pointer address(INDArray a) {
        Pointer buffer = a.data().addressPointer();
        return new Pointer(buffer).position(buffer.position() * a.data().getElementSize());
    }
}
