/**
 * Reusable detection parts (candidates for a future {@code modules/detection}): boxes, YOLOv3 anchors and
 * best-anchor label assignment, the YOLOv3 output layer ({@link io.github.dl4jcnnplugins.samples.yolo.detection.Yolo3OutputLayer})
 * and decoding of its outputs, NMS, mAP, the synthetic VOC generator and
 * VOC loading through DataVec. They use only public DL4J / DataVec API.
 */
package io.github.dl4jcnnplugins.samples.yolo.detection;
