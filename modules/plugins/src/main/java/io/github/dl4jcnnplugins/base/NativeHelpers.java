package io.github.dl4jcnnplugins.base;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.layers.convolution.ConvolutionLayer;
import org.deeplearning4j.nn.layers.mkldnn.MKLDNNBatchNormHelper;
import org.deeplearning4j.nn.layers.mkldnn.MKLDNNConvHelper;
import org.deeplearning4j.nn.layers.normalization.BatchNormalization;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.reflect.Field;
import java.util.Arrays;

/**
 * Puts DL4J's own stock {@link ConvolutionLayer} and {@link BatchNormalization} layers on libnd4j's native
 * {@code conv2d}/{@code conv2d_bp} and {@code batchnorm}/{@code batchnorm_bp} ops, which use oneDNN when the
 * loaded ND4J build has it (the {@code onednn} Maven profile) and libnd4j's own kernels otherwise.
 *
 * <p>Why: in DL4J 1.0.0-M2.1 those layers never reach the native ops on CPU. Their "helpers" (the classes
 * {@link MKLDNNConvHelper} and {@link MKLDNNBatchNormHelper} that DL4J ships for exactly this) are disabled by
 * default ({@code org.eclipse.deeplearning4j.helpers.disable=true}), and even when enabled DL4J's availability check
 * looks up a class that no longer exists ({@code org.nd4j.nativeblas.Nd4jCpu$Environment}) and turns them off, so
 * every convolution runs DL4J's Java im2col + GEMM path. Measured for one 3x3 conv 8 -> 16 channels at 32x32,
 * batch 16, forward + backward: 322 ms on that path, 217 ms through the native op on the generic build and 12.6 ms on
 * the {@code linux-x86_64-onednn} build.
 *
 * <p>{@link #install(Model)} attaches DL4J's helper objects directly to the layers of an initialised network. The
 * helpers handle float32 only; other data types (e.g. double-precision gradient checks) keep DL4J's built-in path,
 * as do dilated convolutions (oneDNN cannot run them in this version), subclasses of ConvolutionLayer
 * (depthwise, separable, deconvolution) and BatchNormalization with locked gamma and beta. DL4J keeps its fallback: if a native op throws, the layer logs a warning
 * and continues on its built-in path. Nothing is serialised: call {@code install} again after
 * {@code ModelSerializer.restore...}, {@code clone()} or anything else that creates new layer objects.
 */
public final class NativeHelpers {
    private static final Field CONV_HELPER = field(ConvolutionLayer.class, "helper");
    private static final Field BN_HELPER = field(BatchNormalization.class, "helper");
    private static final Field CONV_FAILS = field(ConvolutionLayer.class, "helperCountFail");
    private static final Field BN_FAILS = field(BatchNormalization.class, "helperCountFail");

    private NativeHelpers() {
    }

    /**
     * Attaches the native helpers to every eligible layer of a {@link ComputationGraph} or
     * {@link MultiLayerNetwork} (after {@code init()}).
     *
     * @return the number of layers that now use a native helper
     */
    public static int install(Model model) {
        return (int) Arrays.stream(layers(model)).filter(NativeHelpers::install).count();
    }

    /**
     * The number of layers whose native helper has failed at least once, after which DL4J runs them on its
     * built-in path (it logs a warning with the cause when that happens).
     */
    public static int fallbacks(Model model) {
        int n = 0;
        for (Layer layer : layers(model)) {
            try {
                if (layer.getClass() == ConvolutionLayer.class && CONV_HELPER.get(layer) != null) {
                    n += CONV_FAILS.getInt(layer) > 0 ? 1 : 0;
                } else if (layer.getClass() == BatchNormalization.class && BN_HELPER.get(layer) != null) {
                    n += BN_FAILS.getInt(layer) > 0 ? 1 : 0;
                }
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("NativeHelpers: cannot read " + layer.getClass().getName(), e);
            }
        }
        return n;
    }

    private static Layer[] layers(Model model) {
        Layer[] layers;
        if (model instanceof ComputationGraph g) {
            layers = g.getLayers();
        } else if (model instanceof MultiLayerNetwork n) {
            layers = n.getLayers();
        } else {
            throw new IllegalArgumentException("NativeHelpers: expected a ComputationGraph or MultiLayerNetwork, got "
                    + (model == null ? "null" : model.getClass().getName()));
        }
        if (layers == null) {
            throw new IllegalStateException("NativeHelpers: the network has no layers yet; call init() first");
        }
        if (!"CPU".equalsIgnoreCase(Nd4j.getExecutioner().getEnvironmentInformation().getProperty("backend"))) {
            return new Layer[0];   // CUDA: DL4J's own cuDNN helpers apply there
        }
        return layers;
    }

    private static boolean install(Layer layer) {
        try {
            if (layer.getClass() == ConvolutionLayer.class) {
                org.deeplearning4j.nn.conf.layers.ConvolutionLayer conf =
                        (org.deeplearning4j.nn.conf.layers.ConvolutionLayer) layer.conf().getLayer();
                if (Arrays.stream(conf.getDilation()).anyMatch(d -> d != 1)) {
                    return false;
                }
                if (CONV_HELPER.get(layer) == null) {
                    CONV_HELPER.set(layer, new MKLDNNConvHelper(DataType.FLOAT));
                }
                return true;
            }
            if (layer.getClass() == BatchNormalization.class) {
                if (((org.deeplearning4j.nn.conf.layers.BatchNormalization) layer.conf().getLayer()).isLockGammaBeta()) {
                    return false;   // the native op wants gamma and beta arrays
                }
                if (BN_HELPER.get(layer) == null) {
                    BN_HELPER.set(layer, new MKLDNNBatchNormHelper(DataType.FLOAT));
                }
                return true;
            }
            return false;
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("NativeHelpers: cannot reach the helper field of " + layer.getClass().getName(), e);
        }
    }

    private static Field field(Class<?> owner, String name) {
        try {
            Field f = owner.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (NoSuchFieldException e) {
            throw new ExceptionInInitializerError("NativeHelpers: DL4J's " + owner.getName() + " has no field '" + name
                    + "' (written against 1.0.0-M2.1)");
        }
    }
}
