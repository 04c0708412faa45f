"""LiteRT (TFLite) exports of a tiny detector: the raw form verifies with the LiteRT interpreter,
its description travels beside it, and ``LiteRtPredictor`` gives the checkpoint's detections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_helpers import write_random_checkpoint

from ssdcli.benchmark.agreement import compare_detections
from ssdcli.data import pattern_images
from ssdcli.errors import CheckpointError, UsageError
from ssdcli.export.exporter import export_model
from ssdcli.export.verify import FLOAT32
from ssdcli.infer.open import model_format, open_predictor
from ssdcli.postprocess import PostprocessOverrides

for _module in ("litert_torch", "ai_edge_litert"):
    pytest.importorskip(_module, reason=f"{_module} is not installed: pip install 'ssdcli[tflite]'")

CLASSES = ["circle", "cross", "square"]

@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random tiny detector (96 x 128 input) and its verified TFLite export."""
    folder = tmp_path_factory.mktemp("tflite")
    checkpoint = write_random_checkpoint(folder / "best.pt", CLASSES, size_hw=(96, 128))
    result = export_model(checkpoint, fmt="tflite")
    assert result.verify.passed and result.verify.detections > 20
    assert result.path == folder / "best-raw.tflite" and result.form == "raw"
    return checkpoint, result.path


def test_tflite_file_and_description(exported) -> None:
    checkpoint, path = exported
    assert model_format(path) == "tflite"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "best-raw.tflite",
        "best-raw.tflite.json",
        "best.pt",
    ]
    meta = json.loads(path.with_name("best-raw.tflite.json").read_text())
    assert meta["class_names"] == CLASSES and meta["size_hw"] == [96, 128]
    assert meta["form"] == "raw" and meta["fixed_batch"] == 1 and meta["format"] == "tflite"
    predictor = open_predictor(path)
    assert predictor.info.fixed_batch == 1 and predictor.class_names == CLASSES


def test_tflite_detects_like_the_checkpoint(exported) -> None:
    checkpoint, path = exported
    images = pattern_images(3, seed=1)
    asked = PostprocessOverrides(score_threshold=0.05)
    reference = open_predictor(
        checkpoint, overrides=asked, batch_size=3, precision="float32"
    ).predict(images)
    got = open_predictor(path, overrides=asked, batch_size=3, threads=1).predict(images)
    report = compare_detections(reference, got, [im.shape[:2] for im in images], FLOAT32)
    assert report.detections > 20 and report.passed, report.summary()


def test_tflite_options_and_missing_description(exported, tmp_path) -> None:
    checkpoint, path = exported
    with pytest.raises(UsageError, match="raw"):
        export_model(checkpoint, tmp_path / "m.tflite", fmt="tflite", with_nms=True)
    with pytest.raises(UsageError, match="dynamic-batch"):
        export_model(checkpoint, tmp_path / "m.tflite", fmt="tflite", dynamic_batch=True)
    with pytest.raises(UsageError, match="--half"):
        export_model(checkpoint, tmp_path / "m.tflite", fmt="tflite", half=True)
    lonely = tmp_path / "copy.tflite"
    lonely.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="copy.tflite.json"):
        open_predictor(lonely)
