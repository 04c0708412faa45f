"""``build_detector``: recipe -> network + priors, with sizes measured, never declared.

Built-in backbones are the plain dict :data:`BACKBONES`; a plug-in is named in the recipe as
``"package.module:factory"`` and imported at build time. Either way the factory is called as
``factory(BackboneOptions)`` (see :mod:`ssdcli.model.backbone`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ssdcli.errors import ModelError
from ssdcli.model.backbone import Backbone, BackboneOptions
from ssdcli.model.blocks import PlainExtra, xavier_init
from ssdcli.model.efficientnet import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from ssdcli.model.head import make_head
from ssdcli.model.mobilenet import mobilenet_v2, mobilenet_v3_large
from ssdcli.model.neck import make_neck
from ssdcli.model.ssd import SSD, freeze
from ssdcli.model.tiny import tiny
from ssdcli.model.vgg import vgg16
from ssdcli.priors import LevelSpec, anchors_per_cell, build_level_specs, make_priors

if TYPE_CHECKING:
    from ssdcli.config import Recipe

BackboneFactory = Callable[[BackboneOptions], "nn.Module | Backbone"]

BACKBONES: dict[str, BackboneFactory] = {
    "vgg16": vgg16,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v2": mobilenet_v2,
    "tiny": tiny,
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite1": efficientnet_lite1,
    "efficientnet_lite2": efficientnet_lite2,
}
"""Built-in backbone factories by recipe name (``model.backbone``)."""

STAGED_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
"""Backbones that take ``model.frozen_stages``."""


@dataclass
class Detector:
    """A built network with the priors its outputs refer to.

    Attributes:
        model: the network; ``model(images_BCHW) -> (cls_logits_BPK, box_deltas_BP4)``.
        priors_P4 (Tensor[P, 4], float32): normalised cxcywh, (level, y, x, anchor) order.
        levels: one prior spec per feature map.
        size_hw: network input ``(H, W)`` in pixels.
    """

    model: SSD
    priors_P4: Tensor
    levels: list[LevelSpec]
    size_hw: tuple[int, int]


def resolve_backbone(name: str) -> BackboneFactory:
    """The factory for a built-in name or a ``"package.module:factory"`` plug-in string.

    Raises:
        ModelError: unknown built-in (listing them, with a close match), or a plug-in that
            cannot be imported or is not callable.
    """
    if name in BACKBONES:
        return BACKBONES[name]
    if ":" not in name:
        close = [b for b in BACKBONES if b.startswith(name)] if name else []
        close = close or difflib.get_close_matches(name, list(BACKBONES), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelError(
            f"model.backbone: unknown backbone {name!r}; {hint}built-ins: "
            f"{', '.join(BACKBONES)}; or name a plug-in factory as 'package.module:factory'"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelError(
            f"model.backbone: cannot import {module_name!r} for plug-in {name!r} ({error}); "
            "install the package or add its folder to PYTHONPATH"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ModelError(
            f"model.backbone: {module_name!r} has no callable {attribute!r} (plug-in {name!r}); "
            "name a function that takes BackboneOptions and returns a module"
        )
    return factory


def make_backbone(name: str, options: BackboneOptions) -> Backbone:
    """Call the named factory; a bare module gets ``extra_levels`` generic SSD extras (or none)."""
    result = resolve_backbone(name)(options)
    if isinstance(result, Backbone):
        return result
    if not isinstance(result, nn.Module):
        raise ModelError(
            f"model.backbone: factory {name!r} returned {type(result).__name__}; it must return "
            "an nn.Module (forward -> list of feature maps) or ssdcli.model.Backbone"
        )
    return Backbone(result, generic_extras(result, options))


def generic_extras(body: nn.Module, options: BackboneOptions) -> nn.ModuleList:
    """``options.extra_levels`` SSD extra layers (1x1 to 128, 3x3 stride 2 to 256) for plug-ins."""
    count = options.extra_levels or 0
    if count == 0:
        return nn.ModuleList()
    in_channels = _measure(body, nn.ModuleList(), options.size_hw)[-1].shape[1]
    blocks = [PlainExtra(in_channels if i == 0 else 256, 128, 256) for i in range(count)]
    extras = nn.ModuleList(blocks)
    xavier_init(extras)
    return extras


def _measure(body: nn.Module, extras: nn.ModuleList, size_hw: tuple[int, int]) -> list[Tensor]:
    """One dummy forward (eval mode, no grad) of ``body`` then ``extras``: every level's map."""
    was_training = body.training
    body.eval()
    extras.eval()
    try:
        with torch.no_grad():
            maps = list(body(torch.zeros(1, 3, *size_hw)))
            for block in extras:
                maps.append(block(maps[-1]))
    except RuntimeError as error:
        raise ModelError(
            f"the backbone fails on a {size_hw[0]}x{size_hw[1]} input ({error}); a feature map "
            "probably became too small: increase model.size_hw or lower model.extra_levels"
        ) from error
    finally:
        body.train(was_training)
        extras.train(was_training)
    if not maps or not all(isinstance(m, Tensor) and m.dim() == 4 for m in maps):
        raise ModelError("the backbone must return a non-empty list of (B, C, H, W) feature maps")
    return maps


def build_detector(recipe: Recipe, num_classes: int) -> Detector:
    """Build the network and its priors from ``recipe.model`` and ``recipe.priors``.

    Feature-map sizes and channels come from one dummy forward at ``model.size_hw``; anchors
    per cell come from :func:`ssdcli.priors.anchors_per_cell`, shared with the prior generator.

    Args:
        recipe: the resolved recipe.
        num_classes: foreground classes (K = num_classes + 1 with background).

    Raises:
        ModelError: unknown backbone, unusable input size, or head/prior count mismatch.
        RecipeError: per-level prior settings that do not match the number of feature maps.
    """
    if num_classes < 1:
        raise ModelError(f"a detector needs at least one class, got num_classes={num_classes}")
    cfg = recipe.model
    size_hw = (int(cfg.size_hw[0]), int(cfg.size_hw[1]))
    options = BackboneOptions.from_config(cfg)
    if cfg.frozen_stages and cfg.backbone not in STAGED_BACKBONES:
        raise ModelError(
            f"model.frozen_stages: {cfg.backbone!r} has no stages to freeze (those that do: "
            f"{', '.join(STAGED_BACKBONES)}); set it to 0, or use model.freeze: [backbone]"
        )
    backbone = make_backbone(cfg.backbone, options)
    maps = _measure(backbone.body, backbone.extras, size_hw)
    feature_hws = [(int(m.shape[2]), int(m.shape[3])) for m in maps]
    neck = make_neck(cfg.neck, [int(m.shape[1]) for m in maps], cfg.neck_channels)
    channels = [int(m.shape[1]) if neck is None else cfg.neck_channels for m in maps]

    levels = build_level_specs(recipe.priors, size_hw, feature_hws)
    priors_P4 = make_priors(levels, size_hw, clip=recipe.priors.clip)
    anchors = [anchors_per_cell(lv.aspect_ratios, lv.max_size is not None) for lv in levels]
    model = SSD(
        backbone.body,
        backbone.extras,
        cls_head=make_head(channels, anchors, num_classes + 1, backbone.head_style),
        box_head=make_head(channels, anchors, 4, backbone.head_style),
        num_classes=num_classes,
        feature_hws=feature_hws,
        anchors_per_level=anchors,
        neck=neck,
    )
    check_prior_count(model, maps, priors_P4)
    freeze(model, cfg.freeze)
    return Detector(model, priors_P4, levels, size_hw)


def check_prior_count(model: SSD, maps: list[Tensor], priors_P4: Tensor) -> None:
    """Run the heads on measured maps; their P must equal the prior generator's.

    Raises:
        ModelError: naming both counts and the per-level anchors and feature sizes.
    """
    was_training = model.training
    model.eval()  # batch norms in train mode would fail on 1x1 maps and update their statistics
    try:
        with torch.no_grad():
            if model.neck is not None:
                maps = list(model.neck(maps))
            cls_logits_BPK, box_deltas_BP4 = model.predict(maps)
    finally:
        model.train(was_training)
    if not cls_logits_BPK.shape[1] == box_deltas_BP4.shape[1] == priors_P4.shape[0]:
        raise ModelError(
            f"the heads predict {cls_logits_BPK.shape[1]} priors but the prior generator made "
            f"{priors_P4.shape[0]} (feature maps {model.feature_hws}, anchors per cell "
            f"{model.anchors_per_level}); check priors.aspect_ratios/min_sizes/scales have one "
            "entry per feature map"
        )
