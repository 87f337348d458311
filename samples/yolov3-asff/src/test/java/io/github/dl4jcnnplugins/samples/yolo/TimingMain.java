package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.base.NativeHelpers;
import io.github.dl4jcnnplugins.samples.yolo.detection.Anchors;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

/** Manual timing of one training iteration (not a test). args: size width batch asff(true/false) iters [native(true/false)] */
public class TimingMain {
    public static void main(String[] a) {
        boolean asff = Boolean.parseBoolean(a[3]);
        ComputationGraph net = model(a);
        MultiDataSet m = randomBatch(a);
        INDArray x = m.getFeatures(0);
        for (int i = 0, iters = Integer.parseInt(a[4]); i < iters; i++) {
            long t0 = System.nanoTime();
            net.fit(m);
            long t1 = System.nanoTime();
            net.output(false, x);
            long t2 = System.nanoTime();
            System.out.printf("asff=%s fit %.3f s, output %.3f s%n", asff, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
        }
    }

    /** The model of the probe arguments {@code size width batch asff iters [native]} (4 classes). */
    static ComputationGraph model(String[] a) {
        ComputationGraph net = YoloModel.build(Integer.parseInt(a[0]), Integer.parseInt(a[1]), 4, Boolean.parseBoolean(a[3]), 1e-3, 1);
        if (a.length > 5 && Boolean.parseBoolean(a[5])) {
            System.out.println("native helpers on " + NativeHelpers.install(net) + " layers");
        }
        return net;
    }

    /**
     * Random images and empty labels (4 classes) for the three YOLO outputs, of the probe arguments' size and batch:
     * enough to time an iteration.
     */
    static MultiDataSet randomBatch(String[] a) {
        int size = Integer.parseInt(a[0]), batch = Integer.parseInt(a[2]);
        INDArray x = Nd4j.rand(batch, 3, size, size);
        INDArray[] y = new INDArray[3];
        for (int k = 0; k < 3; k++) {
            int g = size / Anchors.STRIDES[k];
            y[k] = Nd4j.zeros(batch, 8, g, g);
        }
        return new MultiDataSet(new INDArray[]{x}, y);
    }
}
