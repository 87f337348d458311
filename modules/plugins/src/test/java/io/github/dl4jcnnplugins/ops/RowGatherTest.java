package io.github.dl4jcnnplugins.ops;

import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RowGatherTest {

    @Test
    void forwardGathersRowsAndGradientScatterAdds() {
        SameDiff sd = SameDiff.create();
        INDArray t = Nd4j.linspace(DataType.DOUBLE, 1, 15, 1).reshape(5, 3);
        SDVariable table = sd.var("table", t);
        SDVariable idx = sd.constant("idx", Nd4j.createFromArray(0L, 2L, 2L, 4L, 0L, 0L));
        SDVariable w = sd.constant("w", Nd4j.linspace(DataType.DOUBLE, 1, 18, 1).reshape(6, 3));
        SDVariable a = RowGather.gather(sd, table, idx);
        SDVariable b = RowGather.gather(sd, table.mul(2.0), idx);   // two ops of this kind in one graph
        SDVariable loss = a.add(b).mul(w).sum();
        loss.markAsLoss();
        INDArray out = a.eval();
        assertEquals(t.getRow(2), out.getRow(1));
        assertEquals(t.getRow(4), out.getRow(3));
        Map<String, INDArray> g = sd.calculateGradients(null, "table");
        INDArray expected = Nd4j.zeros(DataType.DOUBLE, 5, 3);
        long[] ix = {0, 2, 2, 4, 0, 0};
        INDArray wv = w.getArr();
        for (int i = 0; i < ix.length; i++) {
            expected.getRow(ix[i]).addi(wv.getRow(i).mul(3.0));
        }
        assertEquals(expected, g.get("table"));
    }
}
