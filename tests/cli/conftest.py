"""Shared helpers of the CLI tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def _save_tiny_checkpoint(
    path: Path, class_names: list[str], seed: int, recipe_name: str | None = None
) -> Path:
    """An untrained tiny detector (128 x 128 input, width 0.25) saved as an ssdcli checkpoint;
    ``recipe_name`` (e.g. ``shapes_tiny``, the default job's) supplies the other settings."""
    import torch

    from ssdcli.checkpoint.file import make_payload, save_checkpoint
    from ssdcli.config import load_recipe, recipe_to_dict
    from ssdcli.model import build_detector

    overrides = ["model.backbone=tiny", "model.size_hw=[128,128]", "model.width=0.25"]
    if recipe_name is None:
        overrides.append("priors.aspect_ratios=[[2],[2],[2],[2],[2],[2]]")
    recipe = load_recipe(recipe_name, overrides)
    torch.manual_seed(seed)
    detector = build_detector(recipe, num_classes=len(class_names))
    payload = make_payload(detector.model.state_dict(), recipe_to_dict(recipe), class_names)
    save_checkpoint(path, payload)
    return path


@pytest.fixture(scope="session")
def save_tiny_checkpoint() -> Callable[[Path, list[str], int], Path]:
    """The function that writes an untrained tiny checkpoint (path, class names, seed) -> path."""
    return _save_tiny_checkpoint
