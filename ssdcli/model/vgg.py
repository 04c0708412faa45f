"""VGG16 backbone of SSD300/SSD512 (SSD paper, section 3 and Fig. 2).

Layout and parameter names (torchvision's ``ssd300_vgg16`` / ssd.pytorch equivalents):

====================================  =====================================  ===================
ours                                  torchvision ssd300_vgg16               ssd.pytorch
====================================  =====================================  ===================
``backbone.to_conv4_3.conv1_1`` ...   ``backbone.features.0`` ... ``.21``    ``vgg.0`` ... ``.21``
``backbone.l2norm.weight``            ``backbone.scale_weight``              ``L2Norm.weight``
``backbone.to_fc7.conv5_1`` ...       ``backbone.extra.0.1`` ... ``.5``      ``vgg.24`` ... ``.28``
``backbone.to_fc7.fc6`` / ``.fc7``    ``backbone.extra.0.7.1`` / ``.7.3``    ``vgg.31`` / ``.33``
``extras.N.reduce`` / ``.conv``       ``backbone.extra.{N+1}.0`` / ``.2``    ``extras.{2N}/{2N+1}``
====================================  =====================================  ===================

:meth:`VGG16Backbone.layer_names` lists our layers in the order of ssd.pytorch's ``vgg`` list,
which is also torchvision's ``vgg16().features`` order up to ``conv5_3``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdcli.errors import ModelError
from ssdcli.model.backbone import Backbone, BackboneOptions
from ssdcli.model.blocks import PlainExtra, xavier_init
from ssdcli.model.weights import (
    copy_matching,
    is_torchvision_weights_name,
    load_state_dict_file,
    torchvision_state_dict,
)

# (stage number, output channels, convolutions) of VGG16's convolutional part (configuration D).
_VGG16_STAGES = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))

# Extra layers: (mid channels, out channels, kernel, stride, padding), paper Fig. 2 / caffe SSD.
SSD300_EXTRAS = (
    (256, 512, 3, 2, 1),  # conv8_2: 19 -> 10
    (128, 256, 3, 2, 1),  # conv9_2: 10 -> 5
    (128, 256, 3, 1, 0),  # conv10_2: 5 -> 3
    (128, 256, 3, 1, 0),  # conv11_2: 3 -> 1
)
# SSD512 (paper footnote 5, caffe SSD512): every extra halves the map; conv12_2 is 4x4 padding 1,
# giving maps 64/32/16/8/4/2/1 (24564 priors). torchvision's ``highres`` extractor keeps the
# 300-style valid convs for conv10/11 instead (same weight shapes, other map sizes).
SSD512_EXTRAS = (
    (256, 512, 3, 2, 1),  # conv8_2: 32 -> 16
    (128, 256, 3, 2, 1),  # conv9_2: 16 -> 8
    (128, 256, 3, 2, 1),  # conv10_2: 8 -> 4
    (128, 256, 3, 2, 1),  # conv11_2: 4 -> 2
    (128, 256, 4, 1, 1),  # conv12_2: 2 -> 1
)


def _vgg_stage(stage: int, in_channels: int, out_channels: int, convs: int) -> OrderedDict:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, convs + 1):
        layers[f"conv{stage}_{i}"] = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        layers[f"relu{stage}_{i}"] = nn.ReLU(inplace=True)
        in_channels = out_channels
    return layers


class L2Norm(nn.Module):
    """Per-position L2 normalisation over channels with a learnable per-channel scale.

    ParseNet-style rescaling of conv4_3 (SSD paper, section 3.1); ``weight`` starts at 20.
    ``forward(x_BCHW) -> Tensor[B, C, H, W]``.
    """

    def __init__(self, channels: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x_BCHW: Tensor) -> Tensor:
        return self.weight.view(1, -1, 1, 1) * F.normalize(x_BCHW, dim=1)


class VGG16Backbone(nn.Module):
    """VGG16 up to fc7 with SSD's changes; returns ``[l2norm(conv4_3), fc7]``.

    Changes to VGG16 (SSD paper, section 3): pool3 uses ceil mode (conv4_3 is 38x38 at 300);
    pool5 is 3x3 stride 1 padding 1; fc6 becomes a 3x3 convolution with dilation 6 and 1024
    channels, fc7 a 1x1 convolution with 1024 channels. The extra layers read the fc7 map; the
    L2 norm only rescales the conv4_3 map that feeds the heads.
    """

    def __init__(self) -> None:
        super().__init__()
        conv4_3: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = 3
        for stage, channels, convs in _VGG16_STAGES[:4]:
            conv4_3.update(_vgg_stage(stage, in_channels, channels, convs))
            if stage < 4:
                conv4_3[f"pool{stage}"] = nn.MaxPool2d(2, 2, ceil_mode=stage == 3)
            in_channels = channels
        fc7: OrderedDict[str, nn.Module] = OrderedDict(pool4=nn.MaxPool2d(2, 2))
        fc7.update(_vgg_stage(5, 512, 512, 3))
        fc7["pool5"] = nn.MaxPool2d(3, stride=1, padding=1)
        fc7["fc6"] = nn.Conv2d(512, 1024, 3, padding=6, dilation=6)
        fc7["relu6"] = nn.ReLU(inplace=True)
        fc7["fc7"] = nn.Conv2d(1024, 1024, 1)
        fc7["relu7"] = nn.ReLU(inplace=True)
        self.to_conv4_3 = nn.Sequential(conv4_3)
        self.l2norm = L2Norm(512)
        self.to_fc7 = nn.Sequential(fc7)
        xavier_init(self)

    def forward(self, images_BCHW: Tensor) -> list[Tensor]:
        conv4_3 = self.to_conv4_3(images_BCHW)
        return [self.l2norm(conv4_3), self.to_fc7(conv4_3)]

    def layer_names(self) -> list[str]:
        """Qualified layer names in ssd.pytorch's ``vgg`` list order (index i <-> ``vgg.i``)."""
        return [f"to_conv4_3.{n}" for n, _ in self.to_conv4_3.named_children()] + [
            f"to_fc7.{n}" for n, _ in self.to_fc7.named_children()
        ]


def vgg_extras(size_hw: tuple[int, int], extra_levels: int | None) -> nn.ModuleList:
    """The SSD300 extras (4) below 512 px, the SSD512 extras (5) from 512 px; first N if given."""
    table = SSD512_EXTRAS if min(size_hw) >= 512 else SSD300_EXTRAS
    count = len(table) if extra_levels is None else extra_levels
    if not 0 <= count <= len(table):
        raise ModelError(
            f"model.extra_levels: vgg16 at {size_hw[0]}x{size_hw[1]} has at most {len(table)} "
            f"extra levels, got {extra_levels}; use 0..{len(table)} or null for the default"
        )
    blocks = []
    in_channels = 1024
    for mid, out, kernel, stride, padding in table[:count]:
        blocks.append(PlainExtra(in_channels, mid, out, kernel, stride, padding))
        in_channels = out
    extras = nn.ModuleList(blocks)
    xavier_init(extras)
    return extras


def load_vgg16_weights(backbone: VGG16Backbone, spec: str) -> None:
    """Initialise the VGG16 convolutions from torchvision's ImageNet weights or a file.

    ``"imagenet"`` means torchvision's ``VGG16_Weights.IMAGENET1K_FEATURES``: the Caffe VGG16
    weights that SSD, ssd.pytorch and torchvision's ssd300_vgg16 start from. They expect RGB
    pixels minus (123, 117, 104) without scaling (``model.input`` std 1, as the VOC/COCO
    recipes set). ``"IMAGENET1K_V1"`` names torchvision's classification weights instead, which
    expect the default ImageNet mean/std normalisation. Files may be a torchvision ``vgg16``
    state dict (``features.N.*``) or ssd.pytorch's ``vgg16_reducedfc.pth`` (``N.*``, including
    fc6/fc7 as ``31``/``33``; BGR input, so ``model.input.channel_order: bgr``).
    """
    if is_torchvision_weights_name(spec):
        from torchvision.models import VGG16_Weights

        source = torchvision_state_dict(VGG16_Weights, spec, "IMAGENET1K_FEATURES")
        prefix = "features."
    else:
        source = load_state_dict_file(spec)
        prefix = "features." if any(k.startswith("features.") for k in source) else ""
    target = backbone.state_dict(keep_vars=True)
    key_map: dict[str, str] = {}
    for index, name in enumerate(backbone.layer_names()):
        is_fc = name.endswith(("fc6", "fc7"))
        if f"{name}.weight" in target and (not is_fc or f"{prefix}{index}.weight" in source):
            key_map[f"{name}.weight"] = f"{prefix}{index}.weight"
            key_map[f"{name}.bias"] = f"{prefix}{index}.bias"
    copy_matching(target, source, key_map, where=spec)


def vgg16(options: BackboneOptions) -> Backbone:
    """Built-in ``vgg16`` factory: SSD300-style extras below 512 px, SSD512-style from 512 px."""
    body = VGG16Backbone()
    if options.weights:
        load_vgg16_weights(body, options.weights)
    return Backbone(body, vgg_extras(options.size_hw, options.extra_levels), head_style="conv")
