package io.github.dl4jcnnplugins.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Deformable convolution as a function, with torchvision's {@code deform_conv2d(input, offset, weight, bias,
 * stride, padding, dilation, mask)} semantics: DCN v1 without a mask, v2 (modulated) with one.
 *
 * <pre>
 *   out[n, o, y, x] = bias[o] + sum_{c in group(o)} sum_{i, j} weight[o, c, i, j] * mask[n, g(c), k, y, x]
 *                     * bilinear(input[n, c], py, px)
 *   k  = i * kW + j,   g(c) = c / (C / offsetGroups)
 *   py = y * sH - pH + i * dH + offset[n, g*2K + 2k,     y, x]
 *   px = x * sW - pW + j * dW + offset[n, g*2K + 2k + 1, y, x]
 * </pre>
 * i.e. offsets {@code [N, G, K, (dy, dx), H_out, W_out]} and mask {@code [N, G, K, H_out, W_out]} flattened on the
 * channel axis, {@code K = kH * kW}, {@code G = offsetGroups}; {@code bilinear} is {@link BilinearSampler}'s (zeros
 * outside the image).
 *
 * <p>Computed as a "deformable im2col": {@link BilinearSampler#sampleChannelsLast} gathers the {@code K} deformed
 * taps of every output position into columns {@code [N * H_out * W_out, K * C]} (mask applied to the interpolation
 * weights), and one matrix product per weight group with {@code weight} reshaped to {@code [C_out/groups, K * C/groups]}
 * gives the output. <b>Memory</b> is linear in {@code N * C * K * H_out * W_out} (see {@link BilinearSampler}: the
 * 4 gathered neighbours and their gradient dominate, then the columns and their gradient), plus input-sized arrays;
 * no array grows with {@code (H_out * W_out) * (H * W)}. Measured: a {@code [4, 64, 56, 56]} 3x3 64 -> 64 layer
 * runs evaluation, training forward and backward inside a JavaCPP process cap of 1.6 GB in float (peak RSS 1.8 GB,
 * 512 MB JVM heap included; 1.2 GB is too little) and of 3.2 GB in double (2.5 GB is too little); see
 * {@code probe/DeformConvMemoryProbe} in the tests.
 */
public final class DeformConv {
    private DeformConv() {
    }

    /**
     * @param x        input {@code [N, C, H, W]}
     * @param offset   {@code [N, 2 * offsetGroups * K, H_out, W_out]}
     * @param mask     {@code [N, offsetGroups * K, H_out, W_out]} (already in [0, 1]: torchvision applies no sigmoid),
     *                 or null for DCN v1
     * @param weight   {@code [C_out, C / spec.groups, kH, kW]} (PyTorch layout)
     * @param bias     {@code [C_out]} or null
     * @param spec     kernel, stride, padding, dilation per axis and weight groups
     * @return {@code [N, C_out, H_out, W_out]}
     */
    public static SDVariable deformConv2d(SameDiff sd, SDVariable x, long channels, long height, long width,
                                          SDVariable offset, SDVariable mask, SDVariable weight, SDVariable bias,
                                          long outChannels, Conv.Spec spec, int offsetGroups) {
        int groups = spec.groups();
        long outH = spec.outH(height);
        long outW = spec.outW(width);
        long l = outH * outW;
        int k = spec.kH() * spec.kW();
        int og = offsetGroups;

        SDVariable off = offset.reshape(-1, og, k, 2, l);
        SDVariable dy = off.get(SDIndex.all(), SDIndex.all(), SDIndex.all(), SDIndex.point(0), SDIndex.all());
        SDVariable dx = off.get(SDIndex.all(), SDIndex.all(), SDIndex.all(), SDIndex.point(1), SDIndex.all());
        INDArray[] base = basePositions(spec, outH, outW, x.dataType());
        // Sample points in (output position, tap) order: [N, G, L * K].
        SDVariable py = dy.add(sd.constant(base[0])).permute(0, 1, 3, 2).reshape(-1, og, l * k);
        SDVariable px = dx.add(sd.constant(base[1])).permute(0, 1, 3, 2).reshape(-1, og, l * k);
        SDVariable m = mask == null ? null : mask.reshape(-1, og, k, l).permute(0, 1, 3, 2).reshape(-1, og, l * k);

        long cg = channels / og;
        SDVariable cols = BilinearSampler.sampleChannelsLast(sd, x, channels, height, width, og, l * k, py, px, m);
        if (og > 1) {
            cols = cols.reshape(-1, og, l, k, cg).permute(0, 2, 3, 1, 4);               // [N, L, K, G, C/G]
        }
        cols = cols.reshape(-1, k, channels);                                           // [N*L, K, C]

        long ci = channels / groups;
        long co = outChannels / groups;
        SDVariable[] outs = new SDVariable[groups];
        for (int j = 0; j < groups; j++) {
            SDVariable cj = groups == 1 ? cols
                    : cols.get(SDIndex.all(), SDIndex.all(), SDIndex.interval(j * ci, (j + 1) * ci));
            SDVariable wj = groups == 1 ? weight
                    : weight.get(SDIndex.interval(j * co, (j + 1) * co), SDIndex.all(), SDIndex.all(), SDIndex.all());
            // weight [co, ci, kH, kW] -> [co, K * ci] with index k * ci + c, matching the columns.
            SDVariable w2 = wj.permute(0, 2, 3, 1).reshape(co, (long) k * ci);
            outs[j] = MatMul.of(sd, cj.reshape(-1, (long) k * ci), w2, false, true);    // [N*L, co]
        }
        SDVariable out = groups == 1 ? outs[0] : sd.concat(1, outs);
        if (bias != null) {
            out = out.add(bias);
        }
        return out.reshape(-1, outH, outW, outChannels).permute(0, 3, 1, 2);
    }

    /** Undeformed tap positions {@code [1, 1, K, H_out * W_out]}: rows ({@code y * sH - pH + i * dH}) and columns. */
    static INDArray[] basePositions(Conv.Spec spec, long outH, long outW, org.nd4j.linalg.api.buffer.DataType dt) {
        int k = spec.kH() * spec.kW();
        int l = (int) (outH * outW);
        double[][] by = new double[k][l];
        double[][] bx = new double[k][l];
        for (int i = 0; i < spec.kH(); i++) {
            for (int j = 0; j < spec.kW(); j++) {
                int t = i * spec.kW() + j;
                for (int y = 0; y < outH; y++) {
                    for (int xx = 0; xx < outW; xx++) {
                        int p = (int) (y * outW + xx);
                        by[t][p] = (double) y * spec.sH() - spec.pH() + (double) i * spec.dH();
                        bx[t][p] = (double) xx * spec.sW() - spec.pW() + (double) j * spec.dW();
                    }
                }
            }
        }
        return new INDArray[]{Nd4j.createFromArray(by).castTo(dt).reshape(1, 1, k, l),
                Nd4j.createFromArray(bx).castTo(dt).reshape(1, 1, k, l)};
    }
}
