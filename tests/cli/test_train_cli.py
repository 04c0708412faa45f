"""``ssd train``: the run folder, name clashes, Ctrl-C and --resume, missing data, usage errors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.train import data_recipe

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
    assert "resumed from iteration 2 of 6" in resumed.output


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


def _flat_voc_folder(root: Path, count: int = 8) -> Path:
    """``count`` images with VOC XML beside them, no splits (as LabelImg writes them)."""
    import cv2
    import numpy as np

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / f"photo{i}.JPG"), image)
        x0, y0 = int(rng.integers(0, 20)), int(rng.integers(0, 14))
        name = "cat" if i % 2 else "dog"
        (root / f"photo{i}.xml").write_text(
            f"<annotation><filename>photo{i}.JPG</filename><size><width>64</width>"
            f"<height>48</height><depth>3</depth></size><object><name>{name}</name>"
            f"<bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x0 + 30}</xmax>"
            f"<ymax>{y0 + 28}</ymax></bndbox></object></annotation>"
        )
    return root


def test_train_data_takes_a_folder_as_it_comes_and_eval_needs_only_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The small settings below are the tiny network's (the pretrained default is tested apart).
    monkeypatch.setattr(data_recipe, "choose_data_recipe", lambda: ("photos_tiny", "tiny"))
    folder = _flat_voc_folder(tmp_path / "my photos")
    small = [
        "model.size_hw=[64,64]", "model.extra_levels=2", "model.width=0.25",
        "priors.scales=[0.1,0.25,0.45,0.7,0.95]", "priors.aspect_ratios=[[2],[2],[2],[2]]",
        "data.batch_size=2", "data.workers=0", "train.iterations=2", "train.eval_every=2",
        "train.warmup_iterations=0", "eval.batch_size=4",
    ]  # fmt: skip
    args = ["train", "--data", str(folder), "--name", "mine", "--device", "cpu"]
    result = runner.invoke(app, args + [x for s in small for x in ("--set", s)])
    assert result.exit_code == 0, result.output
    assert "priors fitted to the data" in result.output or "priors: the recipe's" in result.output
    run = Path("runs/mine")
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved["data"]["class_names"] == ["cat", "dog"]
    assert saved["data"]["manifest"] == str((run / "manifest.json").resolve())
    assert (saved["data"]["train_split"], saved["data"]["val_split"]) == ("train", "val")
    assert saved["priors"]["fit"] == "off" and "fitted" not in saved["priors"]
    fit_record = json.loads((run / "priors_fit.json").read_text())
    assert fit_record["summary"].startswith("auto: ")
    evaluated = runner.invoke(app, ["eval", str(run / "best.pt"), "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "on split 'test'" in evaluated.output


def test_train_data_refuses_resume_and_a_missing_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert not Path("runs").exists()
    both = runner.invoke(app, ["train", "--data", str(tmp_path), "--resume", "runs/x"])
    assert both.exit_code == 2 and "drop --data" in both.output


def test_last_console_line_and_summary_show_the_same_loss(tiny_yaml: Path) -> None:
    """Both are the mean over the last log window (log_every 2): no unexplained difference."""
    import re

    result = runner.invoke(app, ["train", str(tiny_yaml), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    last_line = [line for line in result.output.splitlines() if line.startswith("iter 6/6")][-1]
    shown = float(re.search(r"\bloss (\d+\.\d+)", last_line).group(1))
    summary = float(re.search(r"final loss\s+│?\s*(\d+\.\d+)", result.output).group(1))
    assert abs(shown - summary) <= 0.0005 + 1e-9
    assert "mean of the last log window" in result.output
