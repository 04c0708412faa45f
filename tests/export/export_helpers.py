"""The random tiny detector the export tests export: one definition for every format's tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ssdcli.checkpoint.file import make_payload, save_checkpoint
from ssdcli.config import recipe_from_dict, recipe_to_dict
from ssdcli.model import build_detector


def write_random_checkpoint(
    path: Path,
    class_names: Sequence[str],
    size_hw: tuple[int, int] = (128, 128),
    model: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a seeded random ``tiny`` detector (width 0.25, one extra aspect ratio, score
    threshold 0.05, 50 detections) with ``class_names`` and input ``size_hw`` to ``path``;
    ``model`` adds keys to the recipe's model section (e.g. ``{"neck": "pan"}``)."""
    torch.manual_seed(0)
    recipe = recipe_from_dict(
        {
            "model": {
                "backbone": "tiny",
                "size_hw": list(size_hw),
                "width": 0.25,
                **(model or {}),
            },
            "priors": {"aspect_ratios": [[2]] * 6},
            "postprocess": {"score_threshold": 0.05, "max_detections": 50},
        },
        "test",
    )
    detector = build_detector(recipe, len(class_names))
    payload = make_payload(detector.model.state_dict(), recipe_to_dict(recipe), list(class_names))
    save_checkpoint(path, payload)
    return path
