"""``ssd detect``: annotated images, JSON lines, COCO results, videos, bad inputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
CLASSES = ["circle", "square", "star"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, save_tiny_checkpoint) -> Path:
    """An untrained tiny detector saved as an ssdcli checkpoint."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "best.pt", CLASSES, seed=0)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), np.uint8)).save(root / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (64, 64), np.uint8)).save(root / "sub" / "gray.png")
    rgba = rng.integers(0, 256, (70, 50, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(root / "sub" / "alpha.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_with_a_corrupt_file(checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    coco = tmp_path / "coco.json"
    args = ["detect", str(folder), "--model", str(checkpoint), "--out", str(out)]
    result = runner.invoke(app, [*args, "--threshold", "0.2", "--save-json", str(coco)])
    assert result.exit_code == 1, result.output
    assert "broken.jpg" in result.output
    assert ", float32" in result.output or ", bfloat16 autocast" in result.output
    lines = _lines(out / "detections.jsonl")
    assert [Path(line["image"]).name for line in lines] == ["a.jpg", "alpha.png", "gray.png"]
    assert [line["size_hw"] for line in lines] == [[90, 120], [70, 50], [64, 64]]
    for line in lines:
        for det in line["detections"]:
            x0, y0, x1, y1 = det["box_xyxy"]
            assert 0 <= x0 <= x1 <= line["size_hw"][1] and 0 <= y0 <= y1 <= line["size_hw"][0]
            assert det["score"] > 0.2 and det["class_name"] == CLASSES[det["label"]]
    assert sum(len(line["detections"]) for line in lines) > 0
    for rel in ("a.jpg", "sub/gray.png", "sub/alpha.png"):
        assert (out / rel).is_file()
    entries = json.loads(coco.read_text())
    assert len(entries) == sum(len(line["detections"]) for line in lines)
    assert {e["category_id"] for e in entries} <= {1, 2, 3}  # label + 1 without data-set ids
    first = lines[0]["detections"][0] if lines[0]["detections"] else None
    if first is not None:
        x0, y0, x1, y1 = first["box_xyxy"]
        match = [e for e in entries if e["file_name"].endswith("a.jpg")][0]
        assert match["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.02)


def test_default_model_and_run_folder_not_overwritten(
    checkpoint: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["detect", str(folder / "a.jpg")])
    assert result.exit_code == 2 and "ssd train" in result.output
    (tmp_path / "runs" / "shapes").mkdir(parents=True)
    (tmp_path / "runs" / "shapes" / "best.pt").write_bytes(checkpoint.read_bytes())
    for _ in range(2):
        result = runner.invoke(app, ["detect", str(folder / "a.jpg"), "--threshold", "0.6"])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "detect" / "a" / "a.jpg").is_file()
    assert (tmp_path / "runs" / "detect" / "a-2" / "a.jpg").is_file()
    assert "a.jpg" in result.output  # a table per image for a few images


def test_stdin_classes_and_no_images(checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["detect", "-", "--model", str(checkpoint), "--out", str(out), "--no-save-images"]
    stdin = f"{folder / 'a.jpg'}\n{folder / 'sub' / 'gray.png'}\n"
    result = runner.invoke(app, [*args, "--threshold", "0.1", "--classes", "star"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = _lines(out / "detections.jsonl")
    assert len(lines) == 2
    assert {d["class_name"] for line in lines for d in line["detections"]} <= {"star"}
    assert sorted(p.name for p in out.iterdir()) == ["detections.jsonl"]
    bad = runner.invoke(
        app, ["detect", str(folder), "--model", str(checkpoint), "--classes", "sqare"]
    )
    assert bad.exit_code == 2 and "did you mean 'square'" in bad.output
    bad = runner.invoke(
        app, ["detect", str(folder), "--model", str(checkpoint), "--precision", "x"]
    )
    assert bad.exit_code == 2 and "--precision 'x'" in bad.output
    exact = runner.invoke(app, [*args, "--precision", "float32"], input=stdin)
    assert exact.exit_code == 0 and "on cpu, float32" in exact.output


def test_video_gets_an_annotated_video(checkpoint: Path, tmp_path: Path) -> None:
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for i in range(7):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    out = tmp_path / "v"
    args = ["detect", str(video), "--model", str(checkpoint), "--out", str(out), "--stride", "2"]
    result = runner.invoke(app, [*args, "--threshold", "0.2"])
    assert result.exit_code == 0, result.output
    assert [line["frame"] for line in _lines(out / "detections.jsonl")] == [0, 2, 4, 6]
    written = cv2.VideoCapture(str(out / "clip.mp4"))
    assert written.isOpened() and int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    written.release()


def test_missing_source_only(checkpoint: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["detect", str(tmp_path / "nothing.jpg"), "--model", str(checkpoint)]
    )
    assert result.exit_code == 1 and "nothing.jpg" in result.output


def test_truncated_jpeg_is_one_warning_line_and_a_corrupt_file_is_skipped(
    checkpoint: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """libjpeg's "Premature end of JPEG file" does not leak to the terminal: it comes back once,
    as a warning naming the file; a file that cannot be decoded is skipped with detect's words
    (nothing about a data set)."""
    import cv2

    rng = np.random.default_rng(3)
    ok, encoded = cv2.imencode(".jpg", rng.integers(0, 256, (120, 160, 3), np.uint8))
    assert ok
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(encoded.tobytes()[: len(encoded) * 2 // 3])
    corrupt = tmp_path / "junk.jpg"
    corrupt.write_bytes(b"not a picture at all")
    args = ["detect", str(truncated), str(corrupt), "--model", str(checkpoint)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out"), "--no-save-images"])
    native = capfd.readouterr()
    assert result.exit_code == 1, result.output  # the corrupt file counts as a problem
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cut.jpg" in warnings[0]
    assert "Premature end of JPEG file" in warnings[0]
    assert "Premature end" not in native.err + native.out
    skipped = [line for line in result.output.splitlines() if "junk.jpg" in line]
    assert skipped and "cannot be decoded" in skipped[0] and "data set" not in skipped[0]
    lines = _lines(tmp_path / "out" / "detections.jsonl")
    assert [Path(line["image"]).name for line in lines] == ["cut.jpg"]


def test_output_folder_is_named_after_an_input_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ssdcli.detect.run import run_name as _run_name

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "street.v2.jpg")
    assert _run_name(["imgs/*.jpg"]) == "imgs"  # not "_"
    assert _run_name(["nothere.jpg", "imgs/street.v2.jpg"]) == "street_v2"  # not "nothere"
    assert _run_name(["imgs/"]) == "imgs"
    assert _run_name(["-"]) == "stdin"
    assert _run_name(["nothere.jpg"]) == "detect"
