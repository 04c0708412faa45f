"""Feature necks between the backbone's levels and the heads (``model.neck``).

* ``none``: the heads see the backbone's and extras' maps as they are (SSD, SSDLite).
* ``fpn``: a top-down feature pyramid (Lin et al., "Feature Pyramid Networks for Object
  Detection", 2017) over every SSD level, as in SSD-FPN / RetinaNet:
  ``P_L = lateral_L(C_L)`` and ``P_l = lateral_l(C_l) + resize(P_{l+1}, H_l x W_l)`` going down,
  then ``out_l = smooth_l(P_l)``. The fine levels (stride 8 and 16) then carry the semantics of
  the coarse ones, which matters most when the backbone's early stages are frozen: without a
  neck, the stride-8 head sees frozen ImageNet features only.
* ``pan``: ``fpn`` followed by a bottom-up path (Liu et al., "Path Aggregation Network", 2018):
  ``N_1 = out_1`` and ``N_l = out_l + down_l(N_{l-1})`` going up, so the coarse levels get the
  fine levels' localisation back.

Every level leaves the neck with ``neck_channels`` channels. The convolutions are SSDLite's
(1x1 and 3x3 depthwise, batch norm, ReLU6) so that the neck stays cheap on a CPU and exports
to ONNX and TorchScript as plain convolutions and nearest-neighbour resizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from ssdcli.model.blocks import ConvBNAct

NeckKind = Literal["none", "fpn", "pan"]


def separable(channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 depthwise (given stride) + BN + ReLU6, then 1x1 + BN + ReLU6: ``channels`` in and out."""
    return nn.Sequential(
        ConvBNAct(channels, channels, 3, stride=stride, groups=channels, activation=nn.ReLU6),
        ConvBNAct(channels, channels, 1, activation=nn.ReLU6),
    )


class FeaturePyramid(nn.Module):
    """Top-down (``fpn``) or top-down then bottom-up (``pan``) feature pyramid.

    ``forward(maps) -> maps``: a list of ``Tensor[B, C_l, H_l, W_l]``, finest first (the SSD
    level order), in; a list of ``Tensor[B, D, H_l, W_l]`` with ``D = channels`` out, same sizes.

    Args:
        in_channels: ``C_l`` of each level, finest first.
        channels: ``D``, the channels of every output level.
        bottom_up: add the PAN bottom-up path after the top-down one.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, bottom_up: bool = False) -> None:
        super().__init__()
        # 1x1 + BN, no activation: the sum of the lateral and the resized coarser map is the
        # pyramid level (FPN); the BN brings the pretrained maps (std 5-7) to one scale.
        self.lateral = nn.ModuleList(
            ConvBNAct(c, channels, 1, activation=None) for c in in_channels
        )
        self.smooth = nn.ModuleList(separable(channels) for _ in in_channels)
        # down[i] takes level i to level i + 1 (stride 2, padding 1 gives ceil(H / 2), the size
        # the SSDLite extras produce, so sizes agree without a resize).
        self.down = (
            nn.ModuleList(separable(channels, stride=2) for _ in in_channels[1:])
            if bottom_up
            else None
        )

    def forward(self, maps: Sequence[Tensor]) -> list[Tensor]:
        assert len(maps) == len(self.lateral), "one input map per level"
        top_down: list[Tensor] = [self.lateral[-1](maps[-1])]
        for level in range(len(maps) - 2, -1, -1):
            lateral = self.lateral[level](maps[level])
            coarser = F.interpolate(top_down[0], size=lateral.shape[-2:], mode="nearest")
            top_down.insert(0, lateral + coarser)
        outs = [smooth(p) for smooth, p in zip(self.smooth, top_down, strict=True)]
        if self.down is None:
            return outs
        bottom_up = [outs[0]]
        for level in range(1, len(outs)):
            below = self.down[level - 1](bottom_up[-1])
            if below.shape[-2:] != outs[level].shape[-2:]:  # maps not made by stride-2 halving
                below = F.interpolate(below, size=outs[level].shape[-2:], mode="nearest")
            bottom_up.append(outs[level] + below)
        return bottom_up


def make_neck(kind: NeckKind, in_channels: Sequence[int], channels: int) -> nn.Module | None:
    """The neck a recipe names (``model.neck``), or None for ``"none"``."""
    if kind == "none":
        return None
    if kind not in ("fpn", "pan"):
        raise ValueError(f"unknown neck {kind!r}")
    return FeaturePyramid(in_channels, channels, bottom_up=kind == "pan")
