package io.github.dl4jcnnplugins.base;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * One parameter (or BatchNorm running statistic) of a plug-in: its DL4J key, the PyTorch {@code state_dict}
 * name it corresponds to, its shape (always the PyTorch layout, so importing is a plain copy) and how a fresh
 * layer initialises it.
 *
 * <p>The DL4J key is the PyTorch name with {@code '_'} written {@code '-'} ({@code ca.fc1.weight},
 * {@code primary-conv.1.running-mean}): DL4J's updater splits gradient keys {@code <layer>_<param>} at the last
 * underscore, so a key may not contain one. {@link #key(String)} is the one place that says so.
 */
public record ParamSpec(String key, String torchName, long[] shape, Kind kind, Init init, double[] initValues) {

    /** What role a parameter plays; decides its updater, regularisation and gradient. */
    public enum Kind {
        /** A trainable weight (weight regularisation applies). */
        WEIGHT,
        /** A trainable bias (bias regularisation applies). */
        BIAS,
        /** BatchNorm running mean or variance: layer state, updated by training forwards, never by the updater. */
        RUNNING_STAT;

        public boolean trainable() {
            return this != RUNNING_STAT;
        }
    }

    /** How a fresh layer fills the parameter (PyTorch's defaults unless the reference module says otherwise). */
    public enum Init {
        /** U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = product of all but the first dimension of {@code shape}:
         *  PyTorch's default for Conv2d / Linear weights ({@code kaiming_uniform(a=sqrt(5))}). */
        FAN_IN_UNIFORM,
        /** Like {@link #FAN_IN_UNIFORM} but with the fan-in given in {@code initValues[0]} (biases). */
        UNIFORM_GIVEN_FAN_IN,
        ZERO,
        ONE,
        /** Exactly the values in {@code initValues} (row-major). */
        VALUES
    }

    public ParamSpec {
        shape = shape.clone();
        initValues = initValues == null ? null : initValues.clone();
    }

    /** DL4J parameter key for a PyTorch state_dict name. */
    public static String key(String torchName) {
        return torchName.replace('_', '-');
    }

    public static ParamSpec weight(String torchName, long... shape) {
        return new ParamSpec(key(torchName), torchName, shape, Kind.WEIGHT, Init.FAN_IN_UNIFORM, null);
    }

    /** A bias initialised like PyTorch's: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with the owning weight's fan-in. */
    public static ParamSpec bias(String torchName, long fanIn, long... shape) {
        return new ParamSpec(key(torchName), torchName, shape, Kind.BIAS, Init.UNIFORM_GIVEN_FAN_IN, new double[]{fanIn});
    }

    /** A parameter with an explicit initialisation. */
    public static ParamSpec of(String torchName, Kind kind, Init init, double[] values, long... shape) {
        return new ParamSpec(key(torchName), torchName, shape, kind, init, values);
    }

    /** The four entries of a {@code BatchNorm2d(c)} named {@code prefix} (e.g. {@code "primary_conv.1"}). */
    public static List<ParamSpec> batchNorm(String prefix, long c) {
        return List.of(
                of(prefix + ".weight", Kind.WEIGHT, Init.ONE, null, c),
                of(prefix + ".bias", Kind.BIAS, Init.ZERO, null, c),
                of(prefix + ".running_mean", Kind.RUNNING_STAT, Init.ZERO, null, c),
                of(prefix + ".running_var", Kind.RUNNING_STAT, Init.ONE, null, c));
    }

    /** Declares {@code specs} to DL4J: weights as weight parameters, everything else as bias parameters. */
    public static void declareAll(List<ParamSpec> specs, org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams params) {
        for (ParamSpec s : specs) {
            if (s.kind() == Kind.WEIGHT) {
                params.addWeightParam(s.key(), s.shape());
            } else {
                params.addBiasParam(s.key(), s.shape());
            }
        }
    }

    /** Initialises every parameter of {@code specs} in {@code params} (by key). */
    public static void initializeAll(List<ParamSpec> specs, java.util.Map<String, INDArray> params) {
        for (ParamSpec s : specs) {
            s.initialize(params.get(s.key()));
        }
    }

    public long length() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Fill {@code arr} (of this spec's shape) with the initial value. */
    public void initialize(INDArray arr) {
        switch (init) {
            case ZERO -> arr.assign(0);
            case ONE -> arr.assign(1);
            case VALUES -> arr.assign(Nd4j.createFromArray(initValues).castTo(arr.dataType()).reshape(arr.shape()));
            case FAN_IN_UNIFORM, UNIFORM_GIVEN_FAN_IN -> {
                double fanIn = init == Init.FAN_IN_UNIFORM ? length() / (double) shape[0] : initValues[0];
                double bound = 1.0 / Math.sqrt(Math.max(1.0, fanIn));
                Nd4j.getRandom(); // make sure the RNG is initialised
                arr.assign(Nd4j.rand(arr.dataType(), arr.shape()).muli(2 * bound).subi(bound));
            }
            default -> throw new IllegalStateException("unknown init " + init);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ParamSpec p && key.equals(p.key) && torchName.equals(p.torchName)
                && Arrays.equals(shape, p.shape) && kind == p.kind && init == p.init
                && Arrays.equals(initValues, p.initValues);
    }

    @Override
    public int hashCode() {
        return key.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return torchName + Arrays.toString(shape);
    }
}
