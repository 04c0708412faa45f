"""``tiny``: a small CPU backbone (well under 2M parameters) for quick experiments.

Built from a layout of (kind, channels, stride) layers, ``kind`` being ``"conv"`` (3x3 conv + BN
+ ReLU) or ``"sep"`` (3x3 depthwise + BN + ReLU, then 1x1 + BN + ReLU). Two stages give the first
two levels (output stride 8 and 16); extra layers halve the map down to 1x1 at 256 px.

The layout was chosen by measurement, speed first (``benchmarks/tiny_backbone_search.py``:
256x256, batch 16, 5 classes, training steps on a shared 2-core CPU). Against all-plain
convolutions (0.68M parameters, 0.46 GFLOP/image) and all-separable layers (0.18M, 0.09 GFLOP),
plain convolutions up to stride 8 then separable ones trained fastest (47 images per CPU-second
single-threaded against 38 and 42). Depthwise convolutions on few channels at high resolution
cost more time than their FLOPs suggest on CPU, hence the plain stem. Plain 3x3 heads cost little
at these widths.

Then accuracy: on the synthetic shapes (6000 images, batch 16, 2800 iterations, VOC07
mAP@0.5 on 900 validation images), one separable layer at stride 8 reached 0.777, three 0.813,
five 0.783. The stride-8 level carries the smallest shapes (10-30 px), whose class is what the
shallow version got wrong (their boxes were found; cross/star/triangle were confused); two more
separable layers there cost about 5% of the step time. A top-down (FPN-style) sum of the
stride-16 map into the stride-8 one gave no gain (0.757 against 0.755 at 2400 iterations on the
smaller set) and is not used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ssdcli.errors import ModelError
from ssdcli.model.backbone import Backbone, BackboneOptions, HeadStyle
from ssdcli.model.blocks import ConvBNAct, SeparableExtra

Layer = tuple[str, int, int]
"""(kind ``"conv"`` or ``"sep"``, output channels at width 1.0, stride)."""


@dataclass(frozen=True)
class TinyLayout:
    """A tiny-backbone design.

    Attributes:
        to_s8: layers from the image to the first level (total stride 8).
        to_s16: layers from there to the second level (stride 16).
        extras: output channels of each separable extra layer (each halves the map).
        head_style: prediction-head style.
    """

    to_s8: tuple[Layer, ...]
    to_s16: tuple[Layer, ...]
    extras: tuple[int, ...]
    head_style: HeadStyle


TINY_LAYOUT = TinyLayout(
    to_s8=(
        ("conv", 16, 2),
        ("conv", 32, 2),
        ("conv", 64, 2),
        ("sep", 64, 1),
        ("sep", 64, 1),
        ("sep", 64, 1),
    ),
    to_s16=(("sep", 128, 2), ("sep", 128, 1), ("sep", 128, 1)),
    extras=(128, 128, 128, 128),
    head_style="conv",
)
"""The built-in ``tiny`` design (6 levels at 256-300 px; see the benchmark for alternatives)."""


def _scaled(channels: int, width: float) -> int:
    """Channels times ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(channels * width + 4) // 8 * 8)


class SeparableConv(nn.Sequential):
    """3x3 ``depthwise`` (stride s) + BN + ReLU, then 1x1 ``pointwise`` + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            OrderedDict(
                depthwise=ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels),
                pointwise=ConvBNAct(in_channels, out_channels, 1),
            )
        )


def kaiming_init(module: nn.Module) -> None:
    """He-normal (fan out) weights for every Conv2d: the layers are followed by BN + ReLU."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")


def _stage(layers: Sequence[Layer], in_channels: int, width: float) -> tuple[nn.Sequential, int]:
    named: OrderedDict[str, nn.Module] = OrderedDict()
    for number, (kind, channels, stride) in enumerate(layers, start=1):
        out_channels = _scaled(channels, width)
        if kind == "conv":
            named[f"conv{number}"] = ConvBNAct(in_channels, out_channels, 3, stride)
        elif kind == "sep":
            named[f"sep{number}"] = SeparableConv(in_channels, out_channels, stride)
        else:
            raise ValueError(f"unknown tiny layer kind {kind!r}")
        in_channels = out_channels
    return nn.Sequential(named), in_channels


class TinyBackbone(nn.Module):
    """Two stages ``to_s8`` and ``to_s16``; ``forward(images_BCHW) -> [s8_map, s16_map]``."""

    def __init__(self, layout: TinyLayout = TINY_LAYOUT, width: float = 1.0) -> None:
        super().__init__()
        self.to_s8, channels = _stage(layout.to_s8, 3, width)
        self.to_s16, self.out_channels = _stage(layout.to_s16, channels, width)
        kaiming_init(self)

    def forward(self, images_BCHW: Tensor) -> list[Tensor]:
        s8 = self.to_s8(images_BCHW)
        return [s8, self.to_s16(s8)]


def tiny_backbone(options: BackboneOptions, layout: TinyLayout = TINY_LAYOUT) -> Backbone:
    """A :class:`Backbone` for ``layout``; ``options.extra_levels`` overrides the extras count
    (more levels repeat the last extra's channels)."""
    if options.weights:
        raise ModelError(
            "model.backbone_weights: the tiny backbone has no pretrained weights; set it to null "
            "(use model.init to start from an ssdcli checkpoint)"
        )
    body = TinyBackbone(layout, options.width)
    count = len(layout.extras) if options.extra_levels is None else options.extra_levels
    blocks = []
    in_channels = body.out_channels
    for level in range(count):
        out_channels = _scaled(layout.extras[min(level, len(layout.extras) - 1)], options.width)
        blocks.append(SeparableExtra(in_channels, out_channels))
        in_channels = out_channels
    extras = nn.ModuleList(blocks)
    kaiming_init(extras)
    return Backbone(body, extras, head_style=layout.head_style)


def tiny(options: BackboneOptions) -> Backbone:
    """Built-in ``tiny`` factory (:data:`TINY_LAYOUT`)."""
    return tiny_backbone(options)
