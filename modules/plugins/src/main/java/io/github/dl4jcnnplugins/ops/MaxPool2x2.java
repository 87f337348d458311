package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Pooling2DConfig;

/**
 * PyTorch's {@code MaxPool2d(2)} on NCHW: kernel 2, stride 2, no padding, an odd last row / column dropped
 * ({@code [N, C, H, W] -> [N, C, H / 2, W / 2]}); the spatial transformer's localisation net and the Non-local
 * block's sub-sampling. SameDiff's {@code maxPooling2d}.
 *
 * <p>Measured and not kept: the same pool as two Java host ops (forward; backward finding each window's maximum
 * again) took 3.6 and 4.6 ms for the spatial transformer's two pools ({@code [16, 8, 58, 58]}, {@code [16, 10, 25,
 * 25]}, float, 2 threads, {@code -onednn}) against libnd4j's 4.0 and 5.9: no gain beyond the noise. Alone the host
 * forward took 1.7 ms, right after a oneDNN convolution 3.0 ms: ND4J's OpenMP threads keep spinning for a while
 * after each op and take a core from any other thread pool (see {@link BatchedMatMul}).
 */
public final class MaxPool2x2 {
    private MaxPool2x2() {
    }

    /** {@code x [N, C, H, W]} max-pooled 2x2 with stride 2: {@code [N, C, H / 2, W / 2]}. */
    public static SDVariable apply(SameDiff sd, SDVariable x) {
        return sd.cnn().maxPooling2d(x, Pooling2DConfig.builder().kH(2).kW(2).sH(2).sW(2).pH(0).pW(0).dH(1).dW(1)
                .paddingMode(PaddingMode.VALID).isNHWC(false).build());
    }
}
