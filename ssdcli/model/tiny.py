"""``tiny``: a small CPU backbone (well under 2M parameters) for quick experiments.

Built from a layout of (kind, channels, stride) layers, ``kind`` being ``"conv"`` (3x3 conv + BN
+ ReLU), ``"sep"`` (3x3 depthwise + BN + ReLU, then 1x1 + BN + ReLU) or ``"s2d"`` (2x2
space-to-depth, then a 3x3 conv + BN + ReLU). Two stages give the first two levels (output stride
8 and 16); extra layers halve the map down to 1x1 at 256 px.

The layout was chosen by measurement on a 2-core CPU (``benchmarks/tiny_backbone_search.py``;
the figures are in ``docs/results.md``): plain convolutions up to stride 8, then separable ones,
trained fastest (depthwise convolutions on few channels at high resolution cost more time than
their FLOPs suggest on CPU); three separable layers at stride 8 were the most accurate on the
shapes; the ``s2d`` stem makes a training step about 20% faster than two plain stem layers. A
top-down (FPN-style) sum gave no gain there and is not used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ssdcli.errors import ModelError, RecipeError
from ssdcli.model.backbone import Backbone, BackboneOptions, HeadStyle
from ssdcli.model.blocks import ConvBNAct, SeparableExtra

Layer = tuple[str, int, int]
"""(kind ``"conv"``, ``"sep"`` or ``"s2d"``, output channels at width 1.0, stride)."""


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
        ("s2d", 32, 4),
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


class SpaceToDepthConv(nn.Sequential):
    """``unshuffle`` (2x2 space-to-depth: ``[B, C, H, W] -> [B, 4C, H/2, W/2]``), then a 3x3
    ``conv`` + BN + ReLU with ``stride / 2``: a 6x6-window, stride-``stride`` convolution that never
    materialises a feature map at half the input resolution (where a plain stride-2 stem spends
    most of its time in batch norm and ReLU over few channels)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 4) -> None:
        if stride not in (2, 4):
            raise ValueError(f"s2d layers have stride 2 or 4, not {stride}")
        super().__init__(
            OrderedDict(
                unshuffle=nn.PixelUnshuffle(2),
                conv=ConvBNAct(4 * in_channels, out_channels, 3, stride // 2),
            )
        )


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
        elif kind == "s2d":
            named[f"s2d{number}"] = SpaceToDepthConv(in_channels, out_channels, stride)
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


def _space_to_depth_multiple(layers: Sequence[Layer]) -> int:
    """The input side multiple that every ``s2d`` layer's 2x2 unshuffle needs: twice the stride
    of the map it reads (1 when there is none)."""
    multiple, stride_in = 1, 1
    for kind, _, stride in layers:
        if kind == "s2d":
            multiple = max(multiple, 2 * stride_in)
        stride_in *= stride
    return multiple


def tiny_backbone(options: BackboneOptions, layout: TinyLayout = TINY_LAYOUT) -> Backbone:
    """A :class:`Backbone` for ``layout``; ``options.extra_levels`` overrides the extras count
    (more levels repeat the last extra's channels)."""
    if options.weights:
        raise ModelError(
            "model.backbone_weights: the tiny backbone has no pretrained weights; set it to null "
            "(use model.init to start from an ssdcli checkpoint)"
        )
    multiple = _space_to_depth_multiple(layout.to_s8 + layout.to_s16)
    if any(side % multiple for side in options.size_hw):
        height, width = options.size_hw
        up_h, up_w = (-(-side // multiple) * multiple for side in (height, width))
        raise RecipeError(
            f"model.size_hw {height}x{width}: the tiny backbone's space-to-depth stem needs sides "
            f"divisible by {multiple}; use e.g. [{up_h}, {up_w}]"
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
