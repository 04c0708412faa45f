"""SSDLite backbones: torchvision's MobileNetV3-Large and MobileNetV2, split at the C4 expansion.

SSDLite (MobileNetV2 paper, section 6.2; MobileNetV3 paper, section 6.3) attaches its first
prediction layer to the expansion (1x1) output of the last stride-2 block (output stride 16) and
the second to the backbone's last layer (stride 32); four separable extra layers follow.

Parameter names against torchvision's ``ssdlite320_mobilenet_v3_large`` (a prefix rename):

==================================  ==============================================
ours                                torchvision
==================================  ==============================================
``backbone.to_c4.*``                ``backbone.features.0.*``
``backbone.to_c5.*``                ``backbone.features.1.*``
``extras.N.reduce.conv/.bn``        ``backbone.extra.N.0.0`` / ``.0.1``
``extras.N.depthwise.*``            ``backbone.extra.N.1.*``
``extras.N.project.*``              ``backbone.extra.N.2.*``
==================================  ==============================================
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ssdcli.errors import ModelError
from ssdcli.model.backbone import Backbone, BackboneOptions
from ssdcli.model.blocks import BN_EPS, BN_MOMENTUM, SeparableExtra, normal_init
from ssdcli.model.weights import (
    copy_matching,
    is_torchvision_weights_name,
    load_state_dict_file,
    torchvision_state_dict,
)

# SSDLite extras' output channels before the width multiplier (torchvision, MobileNetV2 paper).
SSDLITE_EXTRA_CHANNELS = (512, 256, 256, 128)
_MIN_DEPTH = 16


class MobileNetFeatures(nn.Module):
    """torchvision MobileNet ``features`` split into two stages; returns ``[c4, c5]``.

    ``to_c4`` runs up to and including the expansion 1x1 convolution of the last stride-2 block
    (output stride 16); ``to_c5`` runs the rest of that block and the remaining layers (stride 32).
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        # torchvision marks every stride-2 block with ``_is_cn``; the last one starts C4 -> C5.
        c4_pos = max(i for i, block in enumerate(features) if getattr(block, "_is_cn", False))
        c4_block = features[c4_pos]
        if c4_block.use_res_connect:
            raise ModelError("MobileNet C4 block has a residual connection; cannot split it")
        # MobileNetV3's InvertedResidual keeps its layers in ``block``, MobileNetV2's in ``conv``.
        layers = c4_block.block if hasattr(c4_block, "block") else c4_block.conv
        self.to_c4 = nn.Sequential(*features[:c4_pos], layers[0])
        self.to_c5 = nn.Sequential(layers[1:], *features[c4_pos + 1 :])

    def forward(self, images_BCHW: Tensor) -> list[Tensor]:
        c4 = self.to_c4(images_BCHW)
        return [c4, self.to_c5(c4)]


def ssdlite_extras(in_channels: int, width: float, extra_levels: int | None) -> nn.ModuleList:
    """SSDLite extras (512/256/256/128 x width, at least 16); more levels repeat the last width."""
    count = len(SSDLITE_EXTRA_CHANNELS) if extra_levels is None else extra_levels
    if count < 0:
        raise ModelError(f"model.extra_levels must be >= 0 or null, got {extra_levels}")
    blocks = []
    for level in range(count):
        base = SSDLITE_EXTRA_CHANNELS[min(level, len(SSDLITE_EXTRA_CHANNELS) - 1)]
        out_channels = max(_MIN_DEPTH, int(base * width))
        blocks.append(SeparableExtra(in_channels, out_channels))
        in_channels = out_channels
    extras = nn.ModuleList(blocks)
    normal_init(extras)
    return extras


def _load_features(net: nn.Module, spec: str, weights_enum: type) -> None:
    """Copy ImageNet weights (torchvision API or a torchvision-layout file) into ``features``."""
    if is_torchvision_weights_name(spec):
        source = torchvision_state_dict(weights_enum, spec, "IMAGENET1K_V1")
    else:
        source = load_state_dict_file(spec)
    target = net.state_dict(keep_vars=True)
    key_map = {key: key for key in target if key.startswith("features.")}
    copy_matching(target, source, key_map, where=spec)


def _ssdlite_backbone(net: nn.Module, options: BackboneOptions, weights_enum: type) -> Backbone:
    if options.weights:
        _load_features(net, options.weights, weights_enum)
    else:
        normal_init(net)  # torchvision's ssdlite init when no backbone weights are loaded
    body = MobileNetFeatures(net.features)
    last_channels = body.to_c5[-1].out_channels
    extras = ssdlite_extras(last_channels, options.width, options.extra_levels)
    return Backbone(body, extras, head_style="separable")


def mobilenet_v3_large(options: BackboneOptions) -> Backbone:
    """Built-in ``mobilenet_v3_large`` factory (SSDLite320 as torchvision builds it).

    Without backbone weights the tail is reduced (MobileNetV3 paper, Table 6), as torchvision
    does; with ImageNet weights it is the full network those weights belong to.
    """
    from torchvision.models import MobileNet_V3_Large_Weights
    from torchvision.models import mobilenet_v3_large as tv_mobilenet_v3_large

    net = tv_mobilenet_v3_large(
        weights=None,
        width_mult=options.width,
        reduced_tail=options.weights is None,
        norm_layer=partial(nn.BatchNorm2d, eps=BN_EPS, momentum=BN_MOMENTUM),
    )
    return _ssdlite_backbone(net, options, MobileNet_V3_Large_Weights)


def mobilenet_v2(options: BackboneOptions) -> Backbone:
    """Built-in ``mobilenet_v2`` factory (SSDLite on MobileNetV2, MobileNetV2 paper section 6.2)."""
    from torchvision.models import MobileNet_V2_Weights
    from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

    net = tv_mobilenet_v2(
        weights=None,
        width_mult=options.width,
        norm_layer=partial(nn.BatchNorm2d, eps=BN_EPS, momentum=BN_MOMENTUM),
    )
    return _ssdlite_backbone(net, options, MobileNet_V2_Weights)
