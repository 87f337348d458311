package io.github.dl4jcnnplugins.probe;

import io.github.dl4jcnnplugins.conv.DeformConv2d;
import io.github.dl4jcnnplugins.torch.ReferenceRunner;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

/**
 * Memory probe, not a test: evaluation forward, training forward and backward of a 3x3 DeformConv2d 64 -> 64 on
 * {@code [4, 64, 56, 56]} (offsets small but non-zero). Run by hand, e.g.
 * <pre>
 *   OMP_NUM_THREADS=1 /usr/bin/time -v java -Xmx512m -Dorg.bytedeco.javacpp.maxphysicalbytes=1600m \
 *       -Dorg.bytedeco.javacpp.maxbytes=1600m -cp CLASSPATH io.github.dl4jcnnplugins.probe.DeformConvMemoryProbe FLOAT v2
 * </pre>
 * (JavaCPP fails with OutOfMemoryError when the process would exceed {@code maxphysicalbytes}, which bounds what the
 * computation really needs; without a cap, native memory is only returned at garbage collection.)
 */
public class DeformConvMemoryProbe {
    public static void main(String[] args) {
        DataType dt = DataType.valueOf(args.length > 0 ? args[0] : "FLOAT");
        boolean v2 = args.length > 1 && args[1].equals("v2");
        Nd4j.setDefaultDataTypes(dt, dt);
        long[] shape = {4, 64, 56, 56};
        ComputationGraph net = ReferenceRunner.network(new DeformConv2d.Builder().nOut(64).modulation(v2).build(),
                List.of(shape), dt);
        Map<String, INDArray> p = net.getLayer(ReferenceRunner.VERTEX).paramTable();
        Nd4j.getRandom().setSeed(1);
        p.get(DeformConv2d.OFFSET_WEIGHT).assign(Nd4j.randn(dt, p.get(DeformConv2d.OFFSET_WEIGHT).shape()).muli(0.02));
        INDArray x = Nd4j.randn(dt, shape);
        INDArray up = Nd4j.randn(dt, 4, 64, 56, 56);
        for (int r = 0; r < 2; r++) {
            long t0 = System.nanoTime();
            Map<String, INDArray> out = ReferenceRunner.run(net, new INDArray[]{x}, up);
            long t1 = System.nanoTime();
            System.out.printf("%s %s eval fwd + train fwd + bwd: %.1f s, grad.input amax %.3g, heap used %d MB%n", dt,
                    v2 ? "v2" : "v1", (t1 - t0) / 1e9, out.get("grad.input.0").amaxNumber().doubleValue(),
                    (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()) >> 20);
        }
        System.out.printf("javacpp physicalBytes %d MB, maxPhysicalBytes %d MB%n",
                org.bytedeco.javacpp.Pointer.physicalBytes() >> 20, org.bytedeco.javacpp.Pointer.maxPhysicalBytes() >> 20);
    }
}
