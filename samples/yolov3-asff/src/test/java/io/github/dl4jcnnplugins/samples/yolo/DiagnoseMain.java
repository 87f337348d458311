package io.github.dl4jcnnplugins.samples.yolo;

import io.github.dl4jcnnplugins.samples.yolo.detection.Detection;
import io.github.dl4jcnnplugins.samples.yolo.detection.GroundTruth;
import io.github.dl4jcnnplugins.samples.yolo.detection.MeanAveragePrecision;
import io.github.dl4jcnnplugins.samples.yolo.detection.VocDataset;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;

import java.nio.file.Path;
import java.util.List;

/** Diagnostics of a trained model (not a test). args: model.zip dataDir imageSize */
public class DiagnoseMain {
    public static void main(String[] a) throws Exception {
        ComputationGraph net = ModelSerializer.restoreComputationGraph(Path.of(a[0]).toFile(), false);
        int size = Integer.parseInt(a[2]);
        List<String> classes = null;
        for (String split : new String[]{"train", "val"}) {
            VocDataset d = VocDataset.load(Path.of(a[1]).resolve(split), size, classes);
            classes = d.classes();
            List<Detection> dets = YoloAsff.detect(net, d);
            List<GroundTruth> gts = d.groundTruth();
            int c = d.classes().size();
            List<Detection> agn = dets.stream().map(x -> new Detection(x.image(), 0, x.score(), x.box())).toList();
            List<GroundTruth> gagn = gts.stream().map(x -> new GroundTruth(x.image(), 0, x.box())).toList();
            System.out.printf("%s: %d images, %d gts, %d dets; mAP50 %.3f, class-agnostic AP50 %.3f, AP30 agnostic %.3f, mAP30 %.3f%n",
                    split, d.items().size(), gts.size(), dets.size(), MeanAveragePrecision.map(dets, gts, c, 0.5),
                    MeanAveragePrecision.map(agn, gagn, 1, 0.5), MeanAveragePrecision.map(agn, gagn, 1, 0.3),
                    MeanAveragePrecision.map(dets, gts, c, 0.3));
            for (int img = 0; img < 2; img++) {
                final int im = img;
                System.out.println("  image " + img + " truth:");
                gts.stream().filter(g -> g.image() == im).forEach(g -> System.out.printf("     cls %d %s%n", g.cls(), g.box()));
                System.out.println("  top detections:");
                dets.stream().filter(x -> x.image() == im).sorted((p, q) -> Double.compare(q.score(), p.score())).limit(8)
                        .forEach(x -> System.out.printf("     cls %d score %.3f best IoU %.2f %s%n", x.cls(), x.score(),
                                gts.stream().filter(g -> g.image() == im).mapToDouble(g -> g.box().iou(x.box())).max().orElse(0), x.box()));
            }
            double sumBest = 0; int hit5 = 0; double sumRank = 0;
            for (GroundTruth g : gts) {
                double best = 0; double bestScore = 0;
                for (Detection x : dets) {
                    if (x.image() == g.image()) {
                        double iou = x.box().iou(g.box());
                        if (iou > best) { best = iou; bestScore = x.score(); }
                    }
                }
                sumBest += best; hit5 += best >= 0.5 ? 1 : 0;
                final double bs = bestScore;
                sumRank += dets.stream().filter(x -> x.image() == g.image() && x.score() > bs).count();
            }
            System.out.printf("   mean best IoU (any class/score) %.3f, GTs with a det at IoU>=0.5: %.2f, mean #dets scoring above it %.1f%n",
                    sumBest / gts.size(), hit5 / (double) gts.size(), sumRank / gts.size());
            for (double lo : new double[]{0, 20, 44}) {
                double hi = lo == 0 ? 20 : lo == 20 ? 44 : 1e9;
                List<GroundTruth> g2 = gagn.stream().filter(g -> sz(g) >= lo && sz(g) < hi).toList();
                List<Detection> d2 = agn.stream().filter(x -> { double s = Math.sqrt((x.box().x2() - x.box().x1()) * (x.box().y2() - x.box().y1())); return s >= lo * 0.7 && s < hi * 1.4; }).toList();
                System.out.printf("   size %.0f-%.0f: %d gts, agnostic AP50 %.3f%n", lo, hi, g2.size(), MeanAveragePrecision.map(d2, g2, 1, 0.5));
            }
        }
    }

    static double sz(GroundTruth g) {
        return Math.sqrt((g.box().x2() - g.box().x1()) * (g.box().y2() - g.box().y1()));
    }
}
