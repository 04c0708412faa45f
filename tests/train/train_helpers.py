"""A tiny training recipe for the training tests: 64 px shapes, a narrow tiny backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssdcli.config import Recipe, dump_recipe, recipe_from_dict


def tiny_recipe_dict(
    root: Path, loss: dict[str, Any] | None = None, **train: Any
) -> dict[str, Any]:
    """40 synthetic 64x64 images (28 train, 6 val, 6 test), batch 4, 10 iterations.

    ``loss`` sets keys of the ``loss`` section, ``train`` those of the ``train`` section.
    """
    return {
        "model": {"backbone": "tiny", "size_hw": [64, 64], "extra_levels": 2, "width": 0.25},
        "priors": {"scales": [0.1, 0.25, 0.45, 0.7, 0.95], "aspect_ratios": [[2]] * 4},
        "data": {
            "format": "synthetic",
            "root": str(root / "shapes"),
            "synthetic_images": 40,
            "synthetic_size": 64,
            "train_split": "train",
            "val_split": "val",
            "test_split": "test",
            "batch_size": 4,
            "workers": 0,
        },
        "train": {
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "iterations": 10,
            "schedule": "cosine",
            "warmup_iterations": 2,
            "eval_every": 5,
            "checkpoint_every": 5,
            "log_every": 2,
            "runs_dir": str(root / "runs"),
            **train,
        },
        "loss": dict(loss or {}),
        "eval": {"batch_size": 8},
    }


def tiny_recipe(root: Path, loss: dict[str, Any] | None = None, **train: Any) -> Recipe:
    """The recipe of :func:`tiny_recipe_dict`."""
    return recipe_from_dict(tiny_recipe_dict(root, loss, **train), "tiny test recipe")


def write_tiny_recipe(root: Path, loss: dict[str, Any] | None = None, **train: Any) -> Path:
    """The tiny recipe as a YAML file in ``root``."""
    path = root / "tiny.yaml"
    path.write_text(dump_recipe(tiny_recipe(root, loss, **train)))
    return path


def model_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a checkpoint file."""
    return torch.load(path, map_location="cpu", weights_only=True)["model"]
