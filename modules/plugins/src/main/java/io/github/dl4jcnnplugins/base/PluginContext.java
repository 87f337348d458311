package io.github.dl4jcnnplugins.base;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What a plug-in's graph definition can see besides its inputs and parameters: the SameDiff instance,
 * the network data type, the concrete input shapes the graph is built for, whether the graph is the
 * training or the inference one, and a place to register BatchNorm running-statistic updates.
 *
 * <p>One context exists per built graph. The runtime builds one graph per mode ({@link #training()} is fixed
 * when the graph is built), so a definition branches in Java instead of blending both modes in the graph;
 * our runtime classes read the registered updates back after every training forward pass.
 */
public final class PluginContext {

    /**
     * A running statistic to update after a training forward: {@code r = (1 - m) * r + m * batch}, where
     * {@code batch} is the graph variable {@code batchVariable}, times {@code n / (n - 1)} (Bessel's correction)
     * when {@code besselPerSample > 0}, with {@code n = minibatch * besselPerSample}.
     */
    public record RunningStatUpdate(String paramKey, String batchVariable, long offset, double momentum,
                                    long besselPerSample) {
    }

    private final SameDiff sd;
    private final DataType dataType;
    private final List<long[]> inputShapes;
    private final List<RunningStatUpdate> updates = new ArrayList<>();
    private final java.util.Map<String, String> exposed = new java.util.LinkedHashMap<>();
    private final boolean training;
    private int unique;

    /**
     * @param training whether this graph runs training forwards (batch statistics, running-stat updates) or
     *                 inference (running statistics)
     */
    public PluginContext(SameDiff sd, DataType dataType, List<long[]> inputShapes, boolean training) {
        this.sd = sd;
        this.dataType = dataType;
        this.inputShapes = inputShapes;
        this.training = training;
    }

    public SameDiff sd() {
        return sd;
    }

    public DataType dataType() {
        return dataType;
    }

    /** Shape of input {@code i} as the graph is built for it; dimension 0 (the minibatch) is -1. */
    public long[] inputShape(int i) {
        return inputShapes.get(i).clone();
    }

    /** True in the graph used for training forwards and all backward passes; false in the inference graph. */
    public boolean training() {
        return training;
    }

    /**
     * Registers {@code param = (1 - momentum) * param + momentum * batchValue} after every training forward;
     * with {@code besselPerSample > 0} the batch value is first multiplied by {@code n / (n - 1)},
     * {@code n = minibatch * besselPerSample} (to turn a biased variance over N*H*W values into an unbiased one).
     */
    public void addRunningStatUpdate(String paramKey, SDVariable batchValue, double momentum, long besselPerSample) {
        addRunningStatUpdate(paramKey, batchValue, 0, momentum, besselPerSample);
    }

    /**
     * As {@link #addRunningStatUpdate(String, SDVariable, double, long)} for a parameter that is the part of
     * {@code batchValue}'s elements starting at {@code offset} (a BatchNorm over several modules' concatenated channels).
     */
    public void addRunningStatUpdate(String paramKey, SDVariable batchValue, long offset, double momentum,
                                     long besselPerSample) {
        updates.add(new RunningStatUpdate(paramKey, batchValue.name(), offset, momentum, besselPerSample));
    }

    public List<RunningStatUpdate> runningStatUpdates() {
        return Collections.unmodifiableList(updates);
    }

    /**
     * Makes an intermediate result available after every forward pass under {@code key} (see
     * {@link ExposesIntermediates}), e.g. ASFF's fusion weights for visualisation. Costs a copy per forward.
     */
    public void expose(String key, SDVariable value) {
        exposed.put(key, value.name());
    }

    /** Exposed intermediate results: key to variable name. */
    public java.util.Map<String, String> exposed() {
        return java.util.Collections.unmodifiableMap(exposed);
    }

    /** A fresh variable name with the given stem (SameDiff names must be unique within a graph). */
    public String uniqueName(String stem) {
        return stem + "_" + (unique++);
    }
}
