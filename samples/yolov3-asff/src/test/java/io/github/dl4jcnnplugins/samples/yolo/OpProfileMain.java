package io.github.dl4jcnnplugins.samples.yolo;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ops.executioner.OpExecutioner;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.profiler.OpProfiler;

/** Op-level profile of YOLO training iterations (not a test). args: size width batch asff iters [native(true/false)] */
public class OpProfileMain {
    public static void main(String[] a) {
        int size = Integer.parseInt(a[0]), width = Integer.parseInt(a[1]), batch = Integer.parseInt(a[2]);
        boolean asff = Boolean.parseBoolean(a[3]);
        int iters = Integer.parseInt(a[4]);
        ComputationGraph net = YoloModel.build(size, width, 4, asff, 1e-3, 1);
        if (a.length > 5 && Boolean.parseBoolean(a[5])) {
            io.github.dl4jcnnplugins.base.NativeHelpers.install(net);
        }
        MultiDataSet m = TimingMain.randomBatch(size, batch);
        net.fit(m);
        net.fit(m);
        Nd4j.getExecutioner().setProfilingMode(OpExecutioner.ProfilingMode.ALL);
        long t0 = System.nanoTime();
        for (int i = 0; i < iters; i++) {
            net.fit(m);
        }
        System.out.printf("fit %.3f s/iter%n", (System.nanoTime() - t0) / 1e9 / iters);
        OpProfiler.getInstance().printOutDashboard();
    }
}
