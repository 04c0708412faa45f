"""``ssd export --format openvino|tflite``, then ``ssd detect`` and ``ssd eval`` on the exported
file: the same detections and the same metrics as the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
CLASSES = ["circle", "cross", "square", "star", "triangle"]  # the synthetic set's classes
PACKAGES = {
    "openvino": [("onnx", "export"), ("openvino", "openvino")],
    "tflite": [("litert_torch", "tflite"), ("ai_edge_litert", "tflite")],
}
FILES = {"openvino": "best.xml", "tflite": "best-raw.tflite"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set of 12 images (128 px): its manifest.json."""
    from ssdcli.data.prepare.manifest import prepare_synthetic

    root = tmp_path_factory.mktemp("data") / "shapes"
    prepare_synthetic(root, 12, 128, 0)
    return root / "manifest.json"


def _need(fmt: str) -> None:
    for module, extra in PACKAGES[fmt]:
        pytest.importorskip(
            module, reason=f"{module} is not installed: pip install 'ssdcli[{extra}]'"
        )


def _detections(model: Path, images: Path, out: Path) -> list[dict]:
    args = ["detect", str(images), "--model", str(model), "--out", str(out), "--threshold", "0.1"]
    result = runner.invoke(app, [*args, "--precision", "float32", "--no-save-images"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def _eval(model: Path, manifest: Path, out: Path) -> tuple[dict, list[dict]]:
    args = ["eval", str(model), "--data", str(manifest), "--split", "trainval", "--metric", "all"]
    args += ["--json", str(out / "m.json"), "--save-detections", str(out / "d.json")]
    result = runner.invoke(app, [*args, "--plot", str(out / "pr.png")])
    assert result.exit_code == 0, result.output
    return json.loads((out / "m.json").read_text()), json.loads((out / "d.json").read_text())


def _unmatched(want: list[dict], have: list[dict], key: str, box: str) -> int:
    """Detections of either list without a counterpart (same image and label, score within 1e-4,
    box within 0.05 px)."""
    left = list(have)
    missing = 0
    for a in want:
        match = [
            b
            for b in left
            if b.get(key) == a.get(key)
            and b["category_id" if key == "image_id" else "label"]
            == a["category_id" if key == "image_id" else "label"]
            and abs(a["score"] - b["score"]) <= 1e-4
            and max(abs(p - q) for p, q in zip(a[box], b[box], strict=True)) <= 0.05
        ]
        if match:
            left.remove(match[0])
        else:
            missing += 1
    return missing + len(left)


@pytest.mark.parametrize("fmt", ["openvino", "tflite"])
def test_export_then_detect_and_eval_the_file(tmp_path, shapes, save_tiny_checkpoint, fmt) -> None:
    _need(fmt)
    checkpoint = save_tiny_checkpoint(tmp_path / "best.pt", CLASSES, seed=3)
    result = runner.invoke(app, ["export", str(checkpoint), "--format", fmt])
    assert result.exit_code == 0, result.output
    exported = tmp_path / FILES[fmt]
    assert exported.is_file() and "max diff boxes" in result.output

    images = shapes.parent / "JPEGImages"
    want = _detections(checkpoint, images, tmp_path / "ckpt")
    have = _detections(exported, images, tmp_path / "file")
    assert [line["image"] for line in want] == [line["image"] for line in have]
    assert sum(len(line["detections"]) for line in want) > 0
    for a, b in zip(want, have, strict=True):
        assert _unmatched(a["detections"], b["detections"], "label", "box_xyxy") == 0

    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    ref_metrics, ref_dets = _eval(checkpoint, shapes, tmp_path / "e1")
    got_metrics, got_dets = _eval(exported, shapes, tmp_path / "e2")
    assert len(ref_dets) > 100
    # Near-tied scores at the cut-offs may flip a handful of the low-score detections.
    assert _unmatched(ref_dets, got_dets, "image_id", "bbox") <= 0.01 * len(ref_dets)
    for key in ("voc07_map50", "voc_map50", "coco_ap"):
        assert got_metrics["metrics"][key] == pytest.approx(ref_metrics["metrics"][key], abs=1e-3)


def test_eval_of_an_exported_openvino_file_needs_data(tmp_path, save_tiny_checkpoint) -> None:
    _need("openvino")
    checkpoint = save_tiny_checkpoint(tmp_path / "best.pt", CLASSES, seed=3)
    assert runner.invoke(app, ["export", str(checkpoint), "--format", "openvino"]).exit_code == 0
    result = runner.invoke(app, ["eval", str(tmp_path / "best.xml")])
    assert result.exit_code == 2 and "--data" in result.output
