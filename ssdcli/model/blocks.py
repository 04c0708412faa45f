"""Small building blocks shared by the backbones, extra layers and heads.

Every block is an ``nn.Sequential`` with named children, so parameter names read as
``extras.0.reduce.conv.weight`` rather than ``extra.0.0.0.weight``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

# SSDLite (MobileNetV2 paper, section 6.2) and torchvision's ssdlite320 use TensorFlow-style
# batch-norm settings.
BN_EPS = 0.001
BN_MOMENTUM = 0.03


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with the SSDLite settings (eps 0.001, momentum 0.03)."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvBNAct(nn.Sequential):
    """``conv`` (no bias) -> ``bn`` -> ``act``; "same" padding for odd kernels at stride 1.

    Children are named ``conv``, ``bn`` and ``act`` (``act`` absent when ``activation`` is None).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            bn=batch_norm(out_channels),
        )
        if activation is not None:
            layers["act"] = activation()
        super().__init__(layers)


class SeparableExtra(nn.Sequential):
    """SSDLite extra layer: 1x1 ``reduce`` to out/2, 3x3 stride-2 ``depthwise``, 1x1 ``project``.

    Halves the feature map (3x3, stride 2, padding 1), each step BN + ReLU6, as torchvision's
    ssdlite ``_extra_block`` (children ``0``/``1``/``2`` there, ``reduce``/``depthwise``/``project``
    here).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        mid = out_channels // 2
        super().__init__(
            OrderedDict(
                reduce=ConvBNAct(in_channels, mid, 1, activation=nn.ReLU6),
                depthwise=ConvBNAct(mid, mid, 3, stride=2, groups=mid, activation=nn.ReLU6),
                project=ConvBNAct(mid, out_channels, 1, activation=nn.ReLU6),
            )
        )


class PlainExtra(nn.Sequential):
    """SSD extra layer (SSD paper, Fig. 2): 1x1 ``reduce`` + ReLU, then ``conv`` + ReLU.

    ``conv`` has the given kernel, stride and padding (3x3 stride 2 padding 1 halves the map;
    3x3 padding 0 shrinks it by 2). Mirrors one block of torchvision's VGG ``extra`` list
    (``0``/``2`` there, ``reduce``/``conv`` here). No batch norm, as in the paper.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
    ) -> None:
        super().__init__(
            OrderedDict(
                reduce=nn.Conv2d(in_channels, mid_channels, kernel_size=1),
                relu1=nn.ReLU(inplace=True),
                conv=nn.Conv2d(
                    mid_channels, out_channels, kernel_size, stride=stride, padding=padding
                ),
                relu2=nn.ReLU(inplace=True),
            )
        )


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every Conv2d inside ``module`` (SSD's choice)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def normal_init(module: nn.Module, std: float = 0.03) -> None:
    """Normal(0, std) weights and zero biases for every Conv2d (torchvision's SSDLite init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
