"""Detection metrics on plain arrays (numpy and pycocotools; no torch).

* :mod:`ssdcli.metrics.voc`: per-image matching, PR curves, VOC07 11-point and VOC2010+ area AP.
* :mod:`ssdcli.metrics.coco`: COCO AP@[.5:.95], AP50/75 and the size buckets, via pycocotools.
"""

METRICS = ("voc07", "voc", "coco", "all")
"""The metric families a recipe (``eval.metric``) or ``--metric`` may name; ``all`` = the three."""
