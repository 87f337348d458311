package io.github.dl4jcnnplugins.torch;

import io.github.dl4jcnnplugins.attention.Cbam;
import io.github.dl4jcnnplugins.attention.NonLocal;
import io.github.dl4jcnnplugins.attention.SqueezeExcitation;
import io.github.dl4jcnnplugins.base.TorchMapped;
import io.github.dl4jcnnplugins.conv.CoordConv;
import io.github.dl4jcnnplugins.conv.GhostModule;
import io.github.dl4jcnnplugins.conv.Rfb;
import io.github.dl4jcnnplugins.pool.BlurPool;
import io.github.dl4jcnnplugins.pyramid.Aspp;
import io.github.dl4jcnnplugins.pyramid.AsffVertex;
import io.github.dl4jcnnplugins.conv.DeformConv2d;
import io.github.dl4jcnnplugins.spatial.SpatialTransformer;
import org.nd4j.shade.jackson.databind.JsonNode;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * The reference PyTorch modules ({@code shared/reference/torch_plugins.py}) by class name, each mapped to the
 * plug-in configuration built from the module's constructor arguments (as {@code make_goldens.py} writes them).
 */
public final class ReferenceModules {

    private static final Map<String, Function<Args, TorchMapped>> FACTORIES = new LinkedHashMap<>();

    static {
        FACTORIES.put("SEBlock", a -> new SqueezeExcitation.Builder()
                .nIn(a.required("channels"))
                .reduction(a.integer("reduction", 16)).build());
        FACTORIES.put("CBAM", a -> new Cbam.Builder()
                .nIn(a.required("channels"))
                .reduction(a.integer("reduction", 16))
                .spatialKernel(a.integer("spatial_kernel", 7)).build());
        FACTORIES.put("CoordConv", a -> new CoordConv.Builder()
                .nIn(a.required("in_channels"))
                .nOut(a.required("out_channels"))
                .kernelSize(a.integer("kernel_size", 3))
                .stride(a.integer("stride", 1))
                .padding(a.integer("padding", 1))
                .withR(a.bool("with_r", false)).build());
        FACTORIES.put("BlurPool", a -> new BlurPool.Builder()
                .nIn(a.required("channels"))
                .padType(a.string("pad_type", "reflect"))
                .filterSize(a.integer("filt_size", 4))
                .stride(a.integer("stride", 2))
                .padOff(a.integer("pad_off", 0)).build());
        FACTORIES.put("NonLocal", a -> {
            NonLocal.Builder b = new NonLocal.Builder()
                    .nIn(a.required("channels"))
                    .mode(a.string("mode", "embedded_gaussian"))
                    .subSample(a.bool("sub_sample", false));
            if (a.optional("inter_channels") != null) {   // None means channels // 2
                b.interChannels(a.required("inter_channels"));
            }
            return b.build();
        });
        FACTORIES.put("ASPP", a -> new Aspp.Builder()
                .nIn(a.integer("in_channels", 512))
                .depth(a.integer("depth", 256))
                .rates(a.integers("rates", 6, 12, 18)).build());
        FACTORIES.put("GhostModule", a -> new GhostModule.Builder()
                .nIn(a.required("inp"))
                .nOut(a.required("oup"))
                .kernelSize(a.integer("kernel_size", 1))
                .ratio(a.integer("ratio", 2))
                .dwSize(a.integer("dw_size", 3))
                .stride(a.integer("stride", 1))
                .relu(a.bool("relu", true)).build());
        FACTORIES.put("RFB", a -> new Rfb.Builder()
                .nIn(a.required("in_planes"))
                .nOut(a.required("out_planes"))
                .stride(a.integer("stride", 1))
                .scale(a.real("scale", 0.1))
                .visual(a.integer("visual", 1)).build());
        FACTORIES.put("ASFF", a -> new AsffVertex.Builder()
                .level(a.integer("level", -1))
                .multiplier(a.real("multiplier", 1.0))
                .rfb(a.bool("rfb", false))
                .vis(a.bool("vis", false)).build());
        FACTORIES.put("SpatialTransformer", a -> {
            SpatialTransformer.Builder b = new SpatialTransformer.Builder()
                    .nIn(a.required("in_channels"))
                    .inputSize(a.required("height"), a.required("width"))
                    .alignCorners(a.bool("align_corners", false));
            int[] out = a.pair("out_size");
            return (out == null ? b : b.outSize(out[0], out[1])).build();
        });
        FACTORIES.put("DeformConv2d", a -> new DeformConv2d.Builder()
                .nIn(a.required("in_channels"))
                .nOut(a.required("out_channels"))
                .kernelSize(a.integer("kernel_size", 3))
                .stride(a.integer("stride", 1))
                .padding(a.integer("padding", 1))
                .dilation(a.integer("dilation", 1))
                .groups(a.integer("groups", 1))
                .offsetGroups(a.integer("offset_groups", 1))
                .hasBias(a.bool("bias", false))
                .modulation(a.bool("modulation", false)).build());
    }

    private ReferenceModules() {
    }

    /** Names of the reference modules this version can build. */
    public static Set<String> known() {
        return new TreeSet<>(FACTORIES.keySet());
    }

    /** Builds the plug-in for reference module {@code module} with constructor arguments {@code args}. */
    public static TorchMapped create(String module, JsonNode args) {
        Function<Args, TorchMapped> f = FACTORIES.get(module);
        if (f == null) {
            throw new IllegalArgumentException("unknown module '" + module + "'; this version knows " + known());
        }
        Args a = new Args(module, args);
        TorchMapped plugin;
        try {
            plugin = f.apply(a);
        } catch (IllegalArgumentException e) {
            a.requireAllUsed();   // a misspelt argument explains the failure better than its consequence
            throw e;
        }
        a.requireAllUsed();
        return plugin;
    }

    /** Constructor arguments, each read at most once; unknown ones are an error (typos do not pass silently). */
    static final class Args {
        private final String module;
        private final JsonNode node;
        private final Set<String> used = new LinkedHashSet<>();

        Args(String module, JsonNode node) {
            this.module = module;
            this.node = node;
        }

        private JsonNode get(String name) {
            used.add(name);
            return node == null ? null : node.get(name);
        }

        long required(String name) {
            JsonNode v = get(name);
            if (v == null || !v.canConvertToLong()) {
                throw new IllegalArgumentException(module + ": missing integer argument '" + name + "'");
            }
            return v.asLong();
        }

        int integer(String name, int def) {
            JsonNode v = get(name);
            return v == null || v.isNull() ? def : v.asInt();
        }

        /** The argument's value, or null when it is missing or JSON null (Python's None). */
        JsonNode optional(String name) {
            JsonNode v = get(name);
            return v == null || v.isNull() ? null : v;
        }

        int[] integers(String name, int... def) {
            JsonNode v = get(name);
            if (v == null || v.isNull()) {
                return def;
            }
            if (!v.isArray()) {
                throw new IllegalArgumentException(module + ": argument '" + name + "' must be a list of integers; got " + v);
            }
            int[] r = new int[v.size()];
            for (int i = 0; i < r.length; i++) {
                r[i] = v.get(i).asInt();
            }
            return r;
        }

        double real(String name, double def) {
            JsonNode v = get(name);
            return v == null || v.isNull() ? def : v.asDouble();
        }

        boolean bool(String name, boolean def) {
            JsonNode v = get(name);
            return v == null || v.isNull() ? def : v.asBoolean();
        }

        /** An int or a pair of ints ({@code k} means {@code (k, k)}), or null when absent. */
        int[] pair(String name) {
            JsonNode v = get(name);
            if (v == null || v.isNull()) {
                return null;
            }
            if (v.isArray() && v.size() == 2) {
                return new int[]{v.get(0).asInt(), v.get(1).asInt()};
            }
            if (v.canConvertToInt()) {
                return new int[]{v.asInt(), v.asInt()};
            }
            throw new IllegalArgumentException(module + ": argument '" + name + "' must be an int or a pair of ints; got " + v);
        }

        String string(String name, String def) {
            JsonNode v = get(name);
            return v == null || v.isNull() ? def : v.asText();
        }

        void requireAllUsed() {
            if (node == null) {
                return;
            }
            Set<String> unknown = new TreeSet<>();
            for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
                String n = it.next();
                if (!used.contains(n)) {
                    unknown.add(n);
                }
            }
            if (!unknown.isEmpty()) {
                throw new IllegalArgumentException(module + ": unknown argument(s) " + unknown + "; known: " + used);
            }
        }
    }
}
