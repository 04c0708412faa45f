"""ssdcli: train, evaluate, run and export SSD (Single Shot MultiBox Detector) object detectors.

Dimension key used in tensor names (``cls_logits_BPK``, ``priors_P4``, ``gt_boxes_BG4``):

====  ===========================================================
B     batch (images)
C     channels
H, W  height, width (sizes are always ``(H, W)``, named ``size_hw``)
L     feature levels
A     anchors (priors) per feature-map cell
P     priors over all levels, ordered (level, y, x, anchor)
K     classes including background (index 0 is background)
G     ground-truth boxes (padded per image, with a mask)
D     detections
====  ===========================================================

Box formats are named in identifiers and never written as a bare "xywh":

* ``xyxy`` in pixels of the original image at every user boundary (datasets, detections, JSON);
* ``xyxy`` normalised to ``[0, 1]`` for matching and IoU;
* priors are normalised ``cxcywh`` (centre x, centre y, width, height);
* ``xywh_topleft`` only where COCO files require it, converted at the reader/writer.
"""

__version__ = "0.1.0"
