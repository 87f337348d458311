package io.github.dl4jcnnplugins.torch;

import io.github.dl4jcnnplugins.base.ParamSpec;
import io.github.dl4jcnnplugins.base.TorchMapped;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.graph.vertex.GraphVertex;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Loads PyTorch weights ({@code state_dict} entries saved as {@code .npz}) into a plug-in inside a built network,
 * by the reference module's names ({@code fc.0.weight}, {@code ca.fc1.weight}, ...).
 *
 * <p>Our parameters keep PyTorch's layouts, so importing is a copy with a shape check; every missing, unexpected
 * or mis-shaped key is reported in one error that names the plug-in. Keys may carry the golden files'
 * {@code "param."} prefix and a module prefix (for a whole-model {@code state_dict}, pass e.g.
 * {@code "layer3.0.se."}); {@code num_batches_tracked} entries are ignored.
 *
 * <p>Writing the npz in Python: {@code numpy.savez("se.npz", **{k: v.numpy() for k, v in m.state_dict().items()})}.
 */
public final class StateDictImport {
    private static final String GOLDEN_PREFIX = "param.";

    private StateDictImport() {
    }

    /** Imports into the plug-in layer or vertex {@code name} of {@code net}. */
    public static void load(ComputationGraph net, String name, File npz, String modulePrefix) throws IOException {
        load(net, name, readNpz(npz), modulePrefix);
    }

    public static void load(ComputationGraph net, String name, Map<String, INDArray> stateDict, String modulePrefix) {
        GraphVertex v = net.getVertex(name);
        if (v == null) {
            throw new IllegalArgumentException("no vertex named '" + name + "' in the network");
        }
        Object conf = v.hasLayer() ? v.getLayer().conf().getLayer() : v.getConfig();
        Map<String, INDArray> params = v.hasLayer() ? v.getLayer().paramTable() : v.paramTable(false);
        into(mapped(conf, name), params, stateDict, modulePrefix);
    }

    /** Imports into layer {@code index} of {@code net}. */
    public static void load(MultiLayerNetwork net, int index, File npz, String modulePrefix) throws IOException {
        Layer l = net.getLayer(index);
        into(mapped(l.conf().getLayer(), "layer " + index), l.paramTable(), readNpz(npz), modulePrefix);
    }

    private static TorchMapped mapped(Object conf, String where) {
        if (conf instanceof TorchMapped t) {
            return t;
        }
        throw new IllegalArgumentException(where + " is not a dl4j-cnn-plugins plug-in (" + conf.getClass().getName() + ")");
    }

    /** Reads every array of an {@code .npz} file. */
    public static Map<String, INDArray> readNpz(File npz) throws IOException {
        if (!npz.isFile()) {
            throw new IOException("no such file: " + npz);
        }
        try {
            return Nd4j.createFromNpzFile(npz);
        } catch (Exception e) {
            throw new IOException("cannot read " + npz + " as .npz: " + e.getMessage(), e);
        }
    }

    /**
     * The core: copies {@code stateDict} (torch names, optionally prefixed) into {@code params} (DL4J keys).
     *
     * @throws IllegalArgumentException naming every missing, unexpected or mis-shaped key, or a buffer whose
     *                                  values differ from the plug-in's constant
     */
    public static void into(TorchMapped plugin, Map<String, INDArray> params, Map<String, INDArray> stateDict,
                            String modulePrefix) {
        String prefix = modulePrefix == null ? "" : modulePrefix;
        Map<String, INDArray> byTorchName = new LinkedHashMap<>();
        // A golden file holds inputs and results too: its state_dict is the "param." entries.
        boolean golden = stateDict.containsKey("input.0")
                || stateDict.keySet().stream().anyMatch(k -> k.startsWith(GOLDEN_PREFIX));
        for (Map.Entry<String, INDArray> e : stateDict.entrySet()) {
            if (golden && !e.getKey().startsWith(GOLDEN_PREFIX)) {
                continue;
            }
            String k = golden ? e.getKey().substring(GOLDEN_PREFIX.length()) : e.getKey();
            if (!k.startsWith(prefix) || k.endsWith("num_batches_tracked")) {
                continue;
            }
            byTorchName.put(k.substring(prefix.length()), e.getValue());
        }
        INDArray any = params.isEmpty() ? null : params.values().iterator().next();
        Map<String, INDArray> buffers = plugin.referenceBuffers(
                any != null ? any.dataType() : org.nd4j.linalg.api.buffer.DataType.DOUBLE);

        List<String> problems = new ArrayList<>();
        Set<String> expected = new LinkedHashSet<>();
        for (ParamSpec s : plugin.paramSpecs()) {
            expected.add(s.torchName());
            INDArray v = byTorchName.get(s.torchName());
            if (v == null) {
                problems.add("missing " + s.torchName() + " " + Arrays.toString(s.shape()));
            } else if (!Arrays.equals(v.shape(), s.shape())) {
                problems.add(s.torchName() + " has shape " + Arrays.toString(v.shape()) + " in the state_dict but "
                        + Arrays.toString(s.shape()) + " here");
            }
        }
        for (Map.Entry<String, INDArray> b : buffers.entrySet()) {
            expected.add(b.getKey());
            INDArray v = byTorchName.get(b.getKey());
            if (v != null && (!Arrays.equals(v.shape(), b.getValue().shape())
                    || !v.castTo(b.getValue().dataType()).equalsWithEps(b.getValue(), 1e-6))) {
                problems.add("buffer " + b.getKey() + " " + Arrays.toString(v.shape())
                        + " differs from this plug-in's fixed value " + Arrays.toString(b.getValue().shape()));
            }
        }
        for (String k : byTorchName.keySet()) {
            if (!expected.contains(k)) {
                problems.add("unexpected " + prefix + k + " " + Arrays.toString(byTorchName.get(k).shape()));
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(plugin.label() + ": cannot import the state_dict"
                    + (prefix.isEmpty() ? "" : " (prefix '" + prefix + "')") + ": " + String.join("; ", problems)
                    + ". Expected keys: " + expected);
        }
        for (ParamSpec s : plugin.paramSpecs()) {
            INDArray target = params.get(s.key());
            target.assign(byTorchName.get(s.torchName()).castTo(target.dataType()));
        }
    }
}
