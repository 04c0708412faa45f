"""What a backbone factory receives and returns.

A backbone factory (built-in, or a plug-in named ``"package.module:factory"`` in the recipe) is
called once at build time as ``factory(options)`` and returns either

* an ``nn.Module`` whose ``forward(images_BCHW)`` returns a list of feature maps, or
* a :class:`Backbone`: that module plus the extra layers the backbone wants by default and the
  style of prediction head that suits it.

Channel counts and feature-map sizes are never declared: the builder measures them with one
dummy forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from ssdcli.config import ModelConfig

HeadStyle = Literal["conv", "separable"]
"""``"conv"``: one 3x3 convolution per level (SSD paper), Xavier init. ``"separable"``: 3x3
depthwise + BN + ReLU6, then a 1x1 convolution (SSDLite), Normal(0, 0.03) init."""


@dataclass(frozen=True)
class BackboneOptions:
    """Plain arguments for a backbone factory, taken from ``recipe.model``.

    No defaults of its own: :meth:`from_config` takes the values (and so their defaults) from
    :class:`~ssdcli.config.ModelConfig`.

    Attributes:
        size_hw: network input size ``(H, W)`` in pixels.
        width: channel-width multiplier where the backbone has one (ignored otherwise).
        extra_levels: number of extra layers after the backbone's own maps; None = the
            backbone's default.
        weights: None (random init), ``"imagenet"`` (torchvision's weights API, which downloads
            on first use), a torchvision weights-enum member name such as ``"IMAGENET1K_V1"``, or
            the path of a local state-dict file (each factory says which it takes).
        frozen_stages: leading stages kept fixed, batch norms in eval mode (backbones that have
            stages: EfficientNet-Lite); 0 trains all.
    """

    size_hw: tuple[int, int]
    width: float
    extra_levels: int | None
    weights: str | None
    frozen_stages: int

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> BackboneOptions:
        """From the recipe's ``model`` section (``backbone_weights`` becomes ``weights``)."""
        return cls(
            (int(cfg.size_hw[0]), int(cfg.size_hw[1])),
            float(cfg.width),
            cfg.extra_levels,
            cfg.backbone_weights,
            int(cfg.frozen_stages),
        )


@dataclass
class Backbone:
    """A feature extractor with its default extra layers.

    Attributes:
        body: ``forward(images_BCHW) -> list[Tensor[B, C_l, H_l, W_l]]``, at least one map.
        extras: blocks applied in turn to the last map, each adding one more level.
        head_style: the prediction-head style that suits this backbone.
    """

    body: nn.Module
    extras: nn.ModuleList = field(default_factory=nn.ModuleList)
    head_style: HeadStyle = "conv"
