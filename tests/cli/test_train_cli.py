"""``ssd train``: the run folder, name clashes, Ctrl-C and --resume, missing data, usage errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()

TINY = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "extra_levels": 2, "width": 0.25},
    "priors": {"scales": [0.1, 0.25, 0.45, 0.7, 0.95], "aspect_ratios": [[2]] * 4},
    "data": {"format": "synthetic", "synthetic_images": 40, "synthetic_size": 64,
             "train_split": "train", "val_split": "val", "batch_size": 4, "workers": 0},
    "train": {"optimizer": "adamw", "lr": 1e-3, "iterations": 6, "schedule": "cosine",
              "eval_every": 3, "checkpoint_every": 3, "log_every": 2},
    "eval": {"batch_size": 8},
}  # fmt: skip


@pytest.fixture
def tiny_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny recipe file; the working folder is ``tmp_path`` (data/ and runs/ go there)."""
    monkeypatch.chdir(tmp_path)
    recipe = {**TINY, "data": {**TINY["data"], "root": str(tmp_path / "shapes")}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--set", "--resume", "--name", "--device"):
        assert option in result.output


def test_train_writes_a_numbered_run_folder(tiny_yaml: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    run = Path("runs/tiny-1")
    expected = {"recipe.yaml", "metrics.csv", "last.pt", "best.pt", "loss.png", "lr.png", "map.png"}
    assert expected <= {p.name for p in run.iterdir()}
    assert "Training summary" in result.output and "voc07_map50" in result.output
    second = runner.invoke(app, ["train", str(tiny_yaml), "--set", "train.iterations=1"])
    assert second.exit_code == 0, second.output
    assert Path("runs/tiny-2/last.pt").is_file()  # the first run is left alone


def test_existing_name_needs_resume(tiny_yaml: Path) -> None:
    Path("runs/taken").mkdir(parents=True)
    Path("runs/taken/recipe.yaml").write_text("{}")
    result = runner.invoke(app, ["train", str(tiny_yaml), "--name", "taken"])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--resume runs/taken" in result.output


def test_ctrl_c_exits_130_and_resume_finishes(tiny_yaml: Path, monkeypatch) -> None:
    from ssdcli.train import loop as train_module

    real_step = train_module.train_step

    def interrupting_step(parts, state, batch):
        if state.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(parts, state, batch)

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "train_step", interrupting_step)
        result = runner.invoke(app, ["train", str(tiny_yaml), "--name", "r", "--device", "cpu"])
    assert result.exit_code == 130, result.output
    assert "ssd train --resume runs/r" in result.output
    resumed = runner.invoke(app, ["train", "--resume", "runs/r", "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    assert "6/6" in resumed.output


def test_resume_rejects_a_recipe_argument(tiny_yaml: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--resume", "runs/x"])
    assert result.exit_code == 2
    assert "drop the RECIPE argument" in result.output


def test_missing_data_root_is_one_line_before_any_run_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "voc300", "--set", "data.root=/nonexistent"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "/nonexistent" in lines[0]
    assert not Path("runs").exists()


def test_unknown_device_is_a_usage_error(tiny_yaml: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--device", "tpu"])
    assert result.exit_code == 2
    assert "--device" in result.output
