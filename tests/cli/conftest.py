"""Shared helpers of the CLI tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def _save_tiny_checkpoint(path: Path, class_names: list[str], seed: int) -> Path:
    """An untrained tiny detector (128 x 128 input, width 0.25) saved as an ssdcli checkpoint."""
    import torch

    from ssdcli.checkpoint.file import make_payload, save_checkpoint
    from ssdcli.config import load_recipe, recipe_to_dict
    from ssdcli.model import build_detector

    overrides = ["model.backbone=tiny", "model.size_hw=[128,128]", "model.width=0.25"]
    recipe = load_recipe(None, [*overrides, "priors.aspect_ratios=[[2],[2],[2],[2],[2],[2]]"])
    torch.manual_seed(seed)
    detector = build_detector(recipe, num_classes=len(class_names))
    payload = make_payload(detector.model.state_dict(), recipe_to_dict(recipe), class_names)
    save_checkpoint(path, payload)
    return path


@pytest.fixture(scope="session")
def save_tiny_checkpoint() -> Callable[[Path, list[str], int], Path]:
    """The function that writes an untrained tiny checkpoint (path, class names, seed) -> path."""
    return _save_tiny_checkpoint
