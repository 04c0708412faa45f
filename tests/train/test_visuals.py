"""What ``ssd train`` draws: labels.png, val_pred_<it>.png, report.html; TensorBoard (stubbed)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.train import tensorboard
from ssdcli.train.visuals import preview_positions

runner = CliRunner()

TINY = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "extra_levels": 2, "width": 0.25},
    "priors": {"scales": [0.1, 0.25, 0.45, 0.7, 0.95], "aspect_ratios": [[2]] * 4},
    "data": {"format": "synthetic", "synthetic_images": 24, "synthetic_size": 64,
             "train_split": "train", "val_split": "val", "batch_size": 4, "workers": 0},
    "train": {"optimizer": "adamw", "lr": 1e-3, "iterations": 4, "schedule": "cosine",
              "eval_every": 2, "checkpoint_every": 4, "log_every": 2},
    "eval": {"batch_size": 8},
}  # fmt: skip


@pytest.fixture
def tiny_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    recipe = {**TINY, "data": {**TINY["data"], "root": str(tmp_path / "shapes")}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


class StubWriter:
    """Records what a ``SummaryWriter`` would have written."""

    instances: list[StubWriter] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir, self.scalars, self.images, self.closed = log_dir, [], [], False
        StubWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, step))

    def add_image(self, tag: str, image, step: int, dataformats: str) -> None:
        self.images.append((tag, step, image.shape, dataformats))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_preview_positions_spread_over_the_split() -> None:
    assert preview_positions(0) == []
    assert preview_positions(3) == [0, 1, 2]
    assert preview_positions(11, 6) == [0, 2, 4, 6, 8, 10]


def test_train_leaves_report_labels_and_val_previews_and_logs_tensorboard(
    tiny_yaml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    StubWriter.instances.clear()
    monkeypatch.setattr(tensorboard, "_summary_writer_class", lambda: StubWriter)
    args = ["train", str(tiny_yaml), "--device", "cpu", "--set", "train.tensorboard=true"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = Path("runs/tiny-1")
    for name in ("labels.png", "val_pred_2.png", "val_pred_4.png"):
        image = cv2.imread(str(run / name))
        assert image is not None and image.shape[0] > 100, name
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "Training curves" in report and "iteration 4, split &#x27;val&#x27;" in report
    assert "report.html" in result.output and "labels.png" in result.output  # summary files

    (writer,) = StubWriter.instances
    assert writer.log_dir == str(run / "tensorboard") and writer.closed
    assert ("train/loss", 2) in writer.scalars and ("train/lr", 4) in writer.scalars
    assert ("val/voc07_map50", 2) in writer.scalars and ("val/voc07_map50", 4) in writer.scalars
    assert [(tag, step, fmt) for tag, step, _, fmt in writer.images] == [
        ("val/predictions", 2, "HWC"),
        ("val/predictions", 4, "HWC"),
    ]


def test_tensorboard_missing_is_one_clear_line(
    tiny_yaml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    args = ["train", str(tiny_yaml), "--device", "cpu", "--set", "train.tensorboard=true"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "train.tensorboard is true but the tensorboard package is not installed" in (
        result.output.replace("\n", " ")
    )
    assert not list(Path("runs").glob("*/last.pt"))  # stopped before training
