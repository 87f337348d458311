package io.github.dl4jcnnplugins.samples.yolo;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ops.executioner.OpExecutioner;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.profiler.OpProfiler;

/** Op-level profile of YOLO training iterations (not a test). args: size width batch asff iters [native(true/false)] */
public class OpProfileMain {
    public static void main(String[] a) {
        int iters = Integer.parseInt(a[4]);
        ComputationGraph net = TimingMain.model(a);
        MultiDataSet m = TimingMain.randomBatch(a);
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
