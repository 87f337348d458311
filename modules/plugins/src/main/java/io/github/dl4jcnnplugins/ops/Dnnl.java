package io.github.dl4jcnnplugins.ops;

import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_convolution_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.exception.ND4JIllegalStateException;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.bytedeco.dnnl.global.dnnl.*;

/**
 * The few calls of oneDNN's C API (through JavaCPP's {@code org.bytedeco:dnnl} bindings, the same {@code libdnnl}
 * that ND4J's oneDNN builds load) that {@link DirectConv} needs: one CPU engine, a stream per thread, convolution
 * primitives in plain {@code nchw} / {@code oihw} layouts, created once per shape and kept, and execution on ND4J's
 * host memory (no copies). Only touched once {@link DirectConv#available()} has found the classes and the library.
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

    /** Which convolution primitive. */
    enum Kind { FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS }

    /**
     * One convolution: {@code x [n, c, h, w]}, weights {@code [o, c, kH, kW]}, output {@code [n, o, oh, ow]}; stride,
     * left/top padding and dilation (PyTorch's: 1 = none) per axis.
     */
    record Shape(long n, long c, long h, long w, long o, int kH, int kW, int sH, int sW, int pH, int pW, int dH,
                 int dW) {
        long oh() {
            return Conv.Spec.outSize(h, kH, sH, pH, dH);
        }

        long ow() {
            return Conv.Spec.outSize(w, kW, sW, pW, dW);
        }

        long[] src() {
            return new long[]{n, c, h, w};
        }

        long[] weights() {
            return new long[]{o, c, kH, kW};
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

    /** A created primitive with its three memory descriptors (plain layouts). */
    private record Primitive(dnnl_primitive primitive, dnnl_primitive_desc desc, String impl, dnnl_memory_desc_t src,
                             dnnl_memory_desc_t weights, dnnl_memory_desc_t dst) {
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

    private static Primitive primitive(Kind kind, Shape s) {
        return PRIMITIVES.computeIfAbsent(new Key(kind, s), k -> create(kind, s));
    }

    private static Primitive create(Kind kind, Shape s) {
        dnnl_memory_desc_t src = plain(s.src(), dnnl_nchw);
        dnnl_memory_desc_t wei = plain(s.weights(), dnnl_oihw);
        dnnl_memory_desc_t dst = plain(s.dst(), dnnl_nchw);
        long[] strides = {s.sH(), s.sW()};
        long[] dilates = {s.dH() - 1, s.dW() - 1};           // oneDNN counts the inserted zeros
        long[] padL = {s.pH(), s.pW()};
        long[] padR = s.paddingR();
        dnnl_convolution_desc_t cd = new dnnl_convolution_desc_t();
        switch (kind) {
            case FORWARD -> check(dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training,
                    dnnl_convolution_direct, src, wei, null, dst, strides, dilates, padL, padR), "convolution desc");
            case BACKWARD_DATA -> check(dnnl_dilated_convolution_backward_data_desc_init(cd, dnnl_convolution_direct,
                    src, wei, dst, strides, dilates, padL, padR), "convolution backward-data desc");
            case BACKWARD_WEIGHTS -> check(dnnl_dilated_convolution_backward_weights_desc_init(cd,
                    dnnl_convolution_direct, src, wei, null, dst, strides, dilates, padL, padR),
                    "convolution backward-weights desc");
        }
        dnnl_primitive_desc hint = kind == Kind.FORWARD ? null : primitive(Kind.FORWARD, s).desc();
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(cd), null, ENGINE, hint),
                "primitive_desc_create (" + kind + " " + s + ")");
        PointerPointer<?> info = new PointerPointer<>(1);
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, info), "impl_info_str");
        String impl = info.getString(0);
        // The primitive works on these layouts only if oneDNN chose them itself (plain layouts are requested, so it
        // must; checked rather than assumed: a blocked layout would need reorders this class does not do).
        requireLayout(pd, kind == Kind.BACKWARD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md, src, "source", s);
        requireLayout(pd, kind == Kind.BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, wei,
                "weights", s);
        requireLayout(pd, kind == Kind.FORWARD ? dnnl_query_dst_md : dnnl_query_diff_dst_md, dst, "destination", s);
        dnnl_primitive p = new dnnl_primitive();
        check(dnnl_primitive_create(p, pd), "primitive_create");
        return new Primitive(p, pd, impl, src, wei, dst);
    }

    private static void requireLayout(dnnl_primitive_desc pd, int what, dnnl_memory_desc_t expected, String name,
                                      Shape s) {
        if (dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, what, 0), expected) == 0) {
            throw new ND4JIllegalStateException("oneDNN chose a non-plain " + name + " layout for " + s);
        }
    }

    /**
     * Runs the {@code kind} primitive of {@code shape}: forward {@code (x, w) -> y}, backward data
     * {@code (gy, w) -> gx}, backward weights {@code (x, gy) -> gw}. Every array row-major, float; the output is
     * written in place.
     */
    static void execute(Kind kind, Shape shape, INDArray a, INDArray b, INDArray out) {
        Primitive p = primitive(kind, shape);
        INDArray ra = HostOp.rowMajorCopy(a);
        INDArray rb = HostOp.rowMajorCopy(b);
        if (!HostOp.rowMajor(out)) {
            throw new ND4JIllegalStateException("oneDNN convolution: output array is not row-major");
        }
        int[] args;
        dnnl_memory_desc_t[] mds;
        switch (kind) {
            case FORWARD -> {
                args = new int[]{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
                mds = new dnnl_memory_desc_t[]{p.src(), p.weights(), p.dst()};
            }
            case BACKWARD_DATA -> {
                args = new int[]{DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
                mds = new dnnl_memory_desc_t[]{p.dst(), p.weights(), p.src()};
            }
            default -> {
                args = new int[]{DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
                mds = new dnnl_memory_desc_t[]{p.src(), p.dst(), p.weights()};
            }
        }
        INDArray[] arrays = {ra, rb, out};
        dnnl_memory[] mems = new dnnl_memory[3];
        dnnl_exec_arg_t list = new dnnl_exec_arg_t(3);
        try {
            for (int i = 0; i < 3; i++) {
                mems[i] = new dnnl_memory();
                check(dnnl_memory_create(mems[i], mds[i], ENGINE, address(arrays[i])), "memory_create");
                list.position(i).arg(args[i]).memory(mems[i]);
            }
            dnnl_stream stream = STREAM.get();
            check(dnnl_primitive_execute(p.primitive(), stream, 3, list.position(0)), "primitive_execute");
            check(dnnl_stream_wait(stream), "stream_wait");
        } finally {
            for (dnnl_memory m : mems) {
                if (m != null && !m.isNull()) {
                    dnnl_memory_destroy(m);
                }
            }
            list.close();
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
