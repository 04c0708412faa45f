"""Backbone weights: torchvision's weights API (only when the recipe asks) or a local file.

Called from backbone factories at build time, never from a constructor, so building a model
with ``model.backbone_weights: null`` never touches the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssdcli.errors import CheckpointError, ModelError

IMAGENET = "imagenet"


def is_torchvision_weights_name(spec: str) -> bool:
    """True when ``spec`` names torchvision weights ("imagenet" or an enum member) not a file."""
    return spec.lower() == IMAGENET or (spec.isupper() and not Path(spec).suffix)


def torchvision_state_dict(weights_enum: Any, spec: str, default_member: str) -> dict[str, Tensor]:
    """Fetch a torchvision weights enum's state dict (downloads once, then torch hub's cache).

    Args:
        weights_enum: a torchvision ``WeightsEnum`` class, e.g. ``VGG16_Weights``.
        spec: ``"imagenet"`` (meaning ``default_member``) or a member name ("IMAGENET1K_V1").
        default_member: the member that ``"imagenet"`` stands for.

    Raises:
        ModelError: unknown member, or the download failed (offline); the message names both
            fixes: connect once (the file is cached) or pass a local file path.
    """
    member = default_member if spec.lower() == IMAGENET else spec.upper()
    names = [m.name for m in weights_enum]
    if member not in names:
        raise ModelError(
            f"model.backbone_weights: {spec!r} is not one of {weights_enum.__name__}'s weights "
            f"({', '.join(names)}); use 'imagenet', one of those names, or a file path"
        )
    weights = weights_enum[member]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # offline (URLError), truncated download, hash mismatch ...
        raise ModelError(
            f"model.backbone_weights: could not get torchvision's {weights_enum.__name__}."
            f"{member} ({error}). Either connect to the internet once (torchvision caches the "
            f"file under ~/.cache/torch/hub/checkpoints), or download {weights.url} elsewhere "
            "and set model.backbone_weights to that local file path"
        ) from error


def load_state_dict_file(path: str) -> dict[str, Tensor]:
    """Read a state dict from a local file (``torch.load(weights_only=True)``).

    Accepts a bare state dict or one wrapped under ``"state_dict"`` or ``"model"``.

    Raises:
        CheckpointError: missing file, unreadable file, or no tensors inside.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise CheckpointError(
            f"model.backbone_weights: file not found: {file}; give an existing weights file, "
            "'imagenet' (torchvision download) or null"
        )
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"model.backbone_weights: cannot read {file} as a PyTorch weights file ({error})"
        ) from error
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not any(isinstance(v, Tensor) for v in loaded.values()):
        raise CheckpointError(f"model.backbone_weights: {file} holds no state dict of tensors")
    return loaded


def copy_matching(
    target: dict[str, Tensor], source: dict[str, Tensor], key_map: dict[str, str], where: str
) -> None:
    """Copy ``source[src]`` into ``target[dst]`` for every ``dst: src`` of ``key_map``.

    Raises:
        CheckpointError: a mapped key is missing from ``source`` or has another shape.
    """
    missing = [src for src in key_map.values() if src not in source]
    if missing:
        raise CheckpointError(
            f"model.backbone_weights: {where} lacks {len(missing)} expected tensors "
            f"(e.g. {missing[:3]}); is it a state dict of the right backbone?"
        )
    for dst, src in key_map.items():
        if source[src].shape != target[dst].shape:
            raise CheckpointError(
                f"model.backbone_weights: {where}: {src} has shape {tuple(source[src].shape)}, "
                f"expected {tuple(target[dst].shape)} for {dst}"
            )
        with torch.no_grad():
            target[dst].copy_(source[src])
