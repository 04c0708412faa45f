"""SSD networks: backbones (vgg16, mobilenet_v3_large, mobilenet_v2, tiny, plug-ins), heads,
the :class:`SSD` module and :func:`build_detector`.

``build_detector(recipe, num_classes)`` measures the backbone's feature maps with one dummy
forward, builds the priors from ``recipe.priors`` for those sizes, sizes the heads with the same
``priors.anchors_per_cell`` and checks that the head's prior count equals the generator's.
"""

from ssdcli.model.backbone import Backbone, BackboneOptions, HeadStyle
from ssdcli.model.build import (
    BACKBONES,
    Detector,
    build_detector,
    make_backbone,
    resolve_backbone,
)
from ssdcli.model.ssd import PARTS, SSD, freeze

__all__ = [
    "BACKBONES",
    "PARTS",
    "SSD",
    "Backbone",
    "BackboneOptions",
    "Detector",
    "HeadStyle",
    "build_detector",
    "freeze",
    "make_backbone",
    "resolve_backbone",
]
