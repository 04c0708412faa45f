"""Prediction heads: one small network per level, and the flattening that fixes the prior order.

A level's head maps ``(B, C_l, H_l, W_l)`` to ``(B, A_l * N, H_l, W_l)`` with channel
``a * N + n`` for anchor ``a`` and output ``n`` (N = K class logits or 4 box deltas), the layout of
torchvision and ssd.pytorch. :func:`flatten_level` turns it into ``(B, H_l * W_l * A_l, N)`` in
(y, x, anchor) order; concatenating levels gives the (level, y, x, anchor) order of the priors.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ssdcli.model.backbone import HeadStyle
from ssdcli.model.blocks import ConvBNAct, normal_init, xavier_init


class SeparablePredictor(nn.Sequential):
    """SSDLite predictor: 3x3 ``depthwise`` + BN + ReLU6, then a 1x1 ``project`` with bias.

    torchvision's ssdlite ``_prediction_block`` (children ``0.0``/``0.1``/``1`` there are
    ``depthwise.conv``/``depthwise.bn``/``project`` here).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            OrderedDict(
                depthwise=ConvBNAct(
                    in_channels, in_channels, 3, groups=in_channels, activation=nn.ReLU6
                ),
                project=nn.Conv2d(in_channels, out_channels, 1),
            )
        )


def make_head(
    in_channels: Sequence[int],
    anchors_per_level: Sequence[int],
    outputs_per_anchor: int,
    style: HeadStyle = "conv",
) -> nn.ModuleList:
    """One predictor per level with ``anchors * outputs_per_anchor`` output channels.

    Args:
        in_channels: channels of each level's feature map.
        anchors_per_level: priors per cell of each level (from ``priors.anchors_per_cell``).
        outputs_per_anchor: K for the class head, 4 for the box head.
        style: ``"conv"`` (3x3 conv, padding 1, Xavier init: SSD paper) or ``"separable"``
            (:class:`SeparablePredictor`, Normal(0, 0.03) init: torchvision's SSDLite).
    """
    assert len(in_channels) == len(anchors_per_level), "one anchor count per level"
    if style == "conv":
        head = nn.ModuleList(
            nn.Conv2d(c, a * outputs_per_anchor, 3, padding=1)
            for c, a in zip(in_channels, anchors_per_level, strict=True)
        )
        xavier_init(head)
    elif style == "separable":
        head = nn.ModuleList(
            SeparablePredictor(c, a * outputs_per_anchor)
            for c, a in zip(in_channels, anchors_per_level, strict=True)
        )
        normal_init(head)
    else:
        raise ValueError(f"unknown head style {style!r}")
    return head


def flatten_level(out_BAnHW: Tensor, outputs_per_anchor: int) -> Tensor:
    """``(B, A*N, H, W)`` with channel ``a*N + n`` -> ``(B, H*W*A, N)`` in (y, x, anchor) order."""
    batch = out_BAnHW.shape[0]
    return out_BAnHW.permute(0, 2, 3, 1).reshape(batch, -1, outputs_per_anchor)


def apply_head(head: nn.ModuleList, features: Sequence[Tensor], outputs_per_anchor: int) -> Tensor:
    """Run each level's predictor and concatenate: ``Tensor[B, P, outputs_per_anchor]``."""
    outputs = []
    for level, predictor in enumerate(head):
        outputs.append(flatten_level(predictor(features[level]), outputs_per_anchor))
    return torch.cat(outputs, dim=1)
