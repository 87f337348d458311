/**
 * The YOLOv3 + ASFF sample: the command line ({@link io.github.dl4jcnnplugins.samples.yolo.YoloAsff}), the
 * detector graph ({@link io.github.dl4jcnnplugins.samples.yolo.YoloModel}), output files and pictures.
 */
package io.github.dl4jcnnplugins.samples.yolo;
