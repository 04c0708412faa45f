"""Recipes of earlier versions: ``train.match_iou`` / ``neg_pos_ratio`` / ``object_balance``
(now the ``loss`` section) and ``priors.fitted`` (now the run's ``priors_fit.json``) still load,
from files, ``--set``, explicit options and checkpoints, with the same values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from ssdcli.config import (
    LossConfig,
    PriorsConfig,
    Recipe,
    TrainConfig,
    dump_recipe,
    load_recipe,
    override_recipe,
    recipe_from_dict,
    recipe_to_dict,
)
from ssdcli.errors import RecipeError

OLD = """
model: {backbone: tiny, size_hw: [64, 64], extra_levels: 2, width: 0.25}
priors:
  scales: [0.1, 0.25, 0.45, 0.7, 0.95]
  aspect_ratios: [[2], [2], [2], [2]]
  fit: 'off'
  fitted: "auto: 10.0% -> 90.0% of 6 'train' boxes have a prior at IoU >= 0.4"
train: {lr: 0.02, match_iou: 0.4, neg_pos_ratio: 2.5, object_balance: 1.0}
"""
NEW = """
model: {backbone: tiny, size_hw: [64, 64], extra_levels: 2, width: 0.25}
priors:
  scales: [0.1, 0.25, 0.45, 0.7, 0.95]
  aspect_ratios: [[2], [2], [2], [2]]
train: {lr: 0.02}
loss: {match_iou: 0.4, neg_pos_ratio: 2.5, object_balance: 1.0}
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_loss_section_holds_matching_and_loss_and_train_no_longer_does() -> None:
    assert set(LossConfig.model_fields) == {"match_iou", "neg_pos_ratio", "object_balance"}
    assert not set(LossConfig.model_fields) & set(TrainConfig.model_fields)
    loss = Recipe().loss  # the SSD paper's values, as before the move
    assert (loss.match_iou, loss.neg_pos_ratio, loss.object_balance) == (0.5, 3.0, 0.0)
    assert "fitted" not in PriorsConfig.model_fields


def test_an_old_recipe_file_loads_with_the_same_values(tmp_path: Path) -> None:
    old = load_recipe(write(tmp_path, OLD, "old.yaml"))
    assert old == load_recipe(write(tmp_path, NEW, "new.yaml"))
    assert (old.loss.match_iou, old.loss.neg_pos_ratio, old.loss.object_balance) == (0.4, 2.5, 1.0)
    # Saved again, it is written in the new form only.
    saved = recipe_to_dict(old)
    assert "match_iou" not in saved["train"] and "fitted" not in saved["priors"]
    assert load_recipe(write(tmp_path, dump_recipe(old), "again.yaml")) == old


def test_old_keys_in_set_and_options_address_the_new_keys_and_later_wins(tmp_path: Path) -> None:
    new, old = write(tmp_path, NEW, "new.yaml"), write(tmp_path, OLD, "old.yaml")
    assert load_recipe(new, ["train.match_iou=0.3"]).loss.match_iou == 0.3
    assert load_recipe(old, ["loss.match_iou=0.3"]).loss.match_iou == 0.3
    assert load_recipe(old, ["train.object_balance=0.5"]).loss.object_balance == 0.5
    recipe = override_recipe(load_recipe(new), {"train.neg_pos_ratio": 4.0})
    assert recipe.loss.neg_pos_ratio == 4.0


def test_an_old_and_a_new_key_with_different_values_is_a_recipe_error(tmp_path: Path) -> None:
    both = "train: {match_iou: 0.4}\nloss: {match_iou: 0.5}\n"
    with pytest.raises(RecipeError, match=r"train.match_iou \(0.4\) and loss.match_iou \(0.5\)"):
        load_recipe(write(tmp_path, both))
    same = "train: {match_iou: 0.4}\nloss: {match_iou: 0.4}\n"
    assert load_recipe(write(tmp_path, same, "same.yaml")).loss.match_iou == 0.4


def test_priors_fitted_is_dropped_and_no_longer_a_key_of_the_schema() -> None:
    recipe = recipe_from_dict({"priors": {"fitted": "auto: 1% -> 2%"}}, "old run")
    assert recipe.priors == Recipe().priors
    with pytest.raises(ValueError, match="fitted"):
        PriorsConfig(fitted="auto")  # type: ignore[call-arg]
    # Anywhere else, an unknown key still fails with the key path.
    with pytest.raises(RecipeError, match="unknown key loss.fitted"):
        recipe_from_dict({"loss": {"fitted": 1}}, "test")


def test_an_old_checkpoint_loads_with_the_same_values(tmp_path: Path) -> None:
    from ssdcli.checkpoint.file import load_detector, make_payload, save_checkpoint
    from ssdcli.model import build_detector

    old_recipe = yaml.safe_load(OLD)  # as a checkpoint of an earlier version stores it
    recipe = load_recipe(write(tmp_path, NEW))
    torch.manual_seed(0)
    model = build_detector(recipe, num_classes=2).model
    path = tmp_path / "old.pt"
    save_checkpoint(path, make_payload(model.state_dict(), old_recipe, ["a", "b"]))
    loaded = load_detector(path)
    assert loaded.recipe == recipe
    assert loaded.recipe.loss.match_iou == 0.4 and loaded.recipe.loss.object_balance == 1.0
