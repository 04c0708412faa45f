"""A run's checkpoint finds its data where training found it, from any folder: copied elsewhere,
or with the whole project moved. Nothing is generated or written outside the run and the
outputs asked for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
SMALL = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "extra_levels": 2, "width": 0.25},
    "priors": {"scales": [0.1, 0.25, 0.45, 0.7, 0.95], "aspect_ratios": [[2]] * 4},
    "data": {"format": "synthetic", "root": "data/shapes", "synthetic_images": 30,
             "synthetic_size": 64, "train_split": "train", "val_split": "val",
             "test_split": "val", "batch_size": 4, "workers": 0},
    "train": {"optimizer": "adamw", "iterations": 2, "eval_every": 2, "log_every": 1,
              "warmup_iterations": 0},
    "eval": {"batch_size": 8},
}  # fmt: skip


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder trained in with a relative data.root (data/shapes), as the main job."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    (project / "tiny.yaml").write_text(yaml.safe_dump(SMALL))
    result = runner.invoke(app, ["train", "tiny.yaml", "--name", "r", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return project


def test_recipe_stores_absolute_and_run_relative_data_paths(project: Path) -> None:
    saved = yaml.safe_load((project / "runs/r/recipe.yaml").read_text())["data"]
    assert saved["root"] == str(project / "data/shapes")
    assert saved["root_from_run"] == "../../data/shapes"


def test_a_copied_checkpoint_evaluates_elsewhere_without_writing_data(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(project / "runs/r/best.pt", elsewhere / "best.pt")
    monkeypatch.chdir(elsewhere)
    before_project = _files(project)
    result = runner.invoke(app, ["eval", "best.pt", "--device", "cpu", "--json", "m.json"])
    assert result.exit_code == 0, result.output
    assert "on split 'val'" in result.output
    assert _files(elsewhere) == {Path("best.pt"), Path("best_pr_val.png"), Path("m.json")}
    assert _files(project) == before_project  # the data set was read, not regenerated


def test_a_moved_project_finds_its_data_beside_the_run(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = tmp_path / "moved"
    project.rename(moved)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", str(moved / "runs/r/best.pt"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "project").exists()


def test_missing_synthetic_data_is_an_error_not_a_regeneration(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(project / "data/shapes")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["eval", str(project / "runs/r/best.pt"), "--device", "cpu"])
    assert result.exit_code == 1
    assert str(project / "data/shapes") in result.output
    assert "ssd prepare-data synthetic --out" in result.output
    assert not (project / "data/shapes").exists() and _files(elsewhere) == set()


def test_a_copied_checkpoint_of_real_data_evaluates_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a VOC data set read through a prepared manifest with relative paths."""
    import cv2
    import numpy as np

    project = tmp_path / "project"
    voc = project / "voc"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:03d}" for i in range(8)]
    for i, name in enumerate(names):
        cv2.imwrite(str(voc / "JPEGImages" / f"{name}.jpg"), rng.integers(0, 255, (48, 64, 3)))
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48"
            f"</height><depth>3</depth></size><object><name>{'cat' if i % 2 else 'dog'}</name>"
            "<bndbox><xmin>5</xmin><ymin>5</ymin><xmax>40</xmax><ymax>40</ymax></bndbox>"
            "</object></annotation>"
        )
    (voc / "ImageSets/Main/train.txt").write_text("\n".join(names[:6]) + "\n")
    (voc / "ImageSets/Main/val.txt").write_text("\n".join(names[6:]) + "\n")
    monkeypatch.chdir(project)
    prepared = runner.invoke(app, ["prepare-data", "voc", "--format", "voc", "--out", "prep"])
    assert prepared.exit_code == 0, prepared.output
    recipe = {**SMALL, "data": {**SMALL["data"], "format": "voc", "manifest": "prep/manifest.json"}}
    (project / "voc.yaml").write_text(yaml.safe_dump(recipe))
    trained = runner.invoke(app, ["train", "voc.yaml", "--name", "v", "--device", "cpu"])
    assert trained.exit_code == 0, trained.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(project / "runs/v/best.pt", elsewhere / "best.pt")
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["eval", "best.pt", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert _files(elsewhere) == {Path("best.pt"), Path("best_pr_val.png")}
