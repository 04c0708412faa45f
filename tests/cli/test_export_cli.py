"""``ssd export``: the exported file gives ``ssd detect`` the checkpoint's detections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
CLASSES = ["circle", "square"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, save_tiny_checkpoint) -> Path:
    """An untrained tiny detector saved as an ssdcli checkpoint."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("run") / "best.pt", CLASSES, seed=1)


def _detect(model: Path, images: Path, out: Path) -> list[dict]:
    args = ["detect", str(images), "--model", str(model), "--out", str(out), "--threshold", "0.1"]
    # float32 for both: an export is float32, a checkpoint runs bfloat16 where native by default.
    args += ["--precision", "float32"]
    result = runner.invoke(app, [*args, "--no-save-images", "--batch", "2"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def _same(a: dict, b: dict) -> bool:
    close_box = max(abs(p - q) for p, q in zip(a["box_xyxy"], b["box_xyxy"], strict=True))
    return a["label"] == b["label"] and abs(a["score"] - b["score"]) <= 1e-4 and close_box <= 0.05


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_then_detect_gives_the_same_detections(checkpoint, tmp_path, fmt) -> None:
    pytest.importorskip("onnxruntime")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(2)
    for i, hw in enumerate(((80, 120), (128, 128), (150, 100))):
        Image.fromarray(rng.integers(0, 256, (*hw, 3), np.uint8)).save(images / f"{i}.png")
    result = runner.invoke(app, ["export", str(checkpoint), "--format", fmt, "--dynamic-batch"])
    assert result.exit_code == 0, result.output
    exported = checkpoint.with_name("best.onnx" if fmt == "onnx" else "best.torchscript")
    assert exported.is_file() and "max diff boxes" in result.output
    expected = _detect(checkpoint, images, tmp_path / "ckpt")
    got = _detect(exported, images, tmp_path / "exported")
    assert sum(len(line["detections"]) for line in expected) > 0
    for want, have in zip(expected, got, strict=True):
        assert want["image"] == have["image"]
        assert len(want["detections"]) == len(have["detections"])
        left = list(have["detections"])
        for a in want["detections"]:  # equal scores may come in another order
            match = [b for b in left if _same(a, b)]
            assert match, f"no counterpart for {a} in {have['image']}"
            left.remove(match[0])
    exported.unlink()


def test_raw_export_to_chosen_file(checkpoint, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m-raw.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "--raw", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "raw" in result.output


def test_usage_errors_exit_2(checkpoint, tmp_path) -> None:
    result = runner.invoke(app, ["export", str(checkpoint), "--int8"])
    assert result.exit_code == 2 and "--calibration" in result.output
    result = runner.invoke(app, ["export", str(checkpoint), "--format", "coreml"])
    assert result.exit_code == 2 and "onnx" in result.output
    result = runner.invoke(app, ["export", str(tmp_path / "missing.pt")])
    assert result.exit_code == 1 and "missing.pt" in result.output


def _detect_defaults(model: Path, images: Path, out: Path, *extra: str) -> tuple[list[dict], str]:
    """``ssd detect`` with no post-processing option but a low display threshold."""
    args = ["detect", str(images), "--model", str(model), "--out", str(out), "--no-save-images"]
    result = runner.invoke(app, [*args, "--precision", "float32", "--threshold", "0.1", *extra])
    assert result.exit_code == 0, result.output
    lines = (out / "detections.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines], result.output


def test_detect_uses_the_models_own_postprocessing(save_tiny_checkpoint, tmp_path) -> None:
    """``ssd detect best.pt`` and ``ssd detect best.onnx`` (NMS inside) give the same detections:
    both take NMS IoU and the detection limit from the model (the default recipe's NMS IoU is
    0.4), and no note about ignored options appears when none was given."""
    pytest.importorskip("onnxruntime")
    checkpoint = save_tiny_checkpoint(tmp_path / "best.pt", CLASSES, 1, "shapes_tiny")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(5)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), np.uint8)).save(images / f"{i}.png")
    out_file = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "--format", "onnx", "--out", out_file])
    assert result.exit_code == 0, result.output
    expected, _ = _detect_defaults(checkpoint, images, tmp_path / "ckpt")
    got, output = _detect_defaults(out_file, images, tmp_path / "onnx")
    assert "ignored" not in output and "acts as" not in output
    assert sum(len(line["detections"]) for line in expected) > 20
    for want, have in zip(expected, got, strict=True):
        assert len(want["detections"]) == len(have["detections"]), want["image"]
        left = list(have["detections"])
        for a in want["detections"]:
            assert [b for b in left if _same(a, b)], f"no counterpart for {a} in {have['image']}"
    # The check can fail: another NMS IoU on the checkpoint alone changes what is kept.
    other, _ = _detect_defaults(checkpoint, images, tmp_path / "other", "--nms-iou", "0.6")
    assert [line["detections"] for line in other] != [line["detections"] for line in expected]
