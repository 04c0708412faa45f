"""``ssd eval``: table, PR plot and JSON files from a checkpoint and a manifest; error exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
CLASSES = ["circle", "square"]


def make_checkpoint(path: Path, class_names: list[str]) -> Path:
    """An untrained tiny detector (96 x 96 input) saved as an ssdcli checkpoint."""
    import torch

    from ssdcli.checkpoint.file import make_payload, save_checkpoint
    from ssdcli.config import load_recipe, recipe_to_dict
    from ssdcli.model import build_detector

    recipe = load_recipe(None, ["model.backbone=tiny", "model.size_hw=[96,96]", "data.workers=0"])
    torch.manual_seed(0)
    detector = build_detector(recipe, num_classes=len(class_names))
    payload = make_payload(detector.model.state_dict(), recipe_to_dict(recipe), class_names)
    save_checkpoint(path, payload)
    return path


def make_manifest(folder: Path, class_names: list[str]) -> Path:
    """Four images of different sizes with one or two objects each, split ``test``."""
    import cv2

    from ssdcli.data.records import Manifest, Record

    rng = np.random.default_rng(0)
    records = []
    for i, (height, width) in enumerate([(80, 120), (100, 100), (120, 90), (64, 64)]):
        image_path = folder / f"img{i}.png"
        cv2.imwrite(str(image_path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        boxes = [[5, 5, 40, 50], [30, 20, 60, 60]][: 1 + i % 2]
        records.append(
            Record.make(f"{100 + i}", image_path, (height, width), boxes, [0, 1][: len(boxes)])
        )
    manifest = Manifest(
        class_names=list(class_names),
        records=records,
        splits={"test": [0, 1, 2, 3], "val": [0]},  # image 0 holds a circle only
        category_ids=[3, 8] if len(class_names) == 2 else None,
        source=str(folder),
        format="coco",
    )
    return manifest.save(folder / "manifest.json")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("ssdcli.data.pipeline.loader")
    folder = tmp_path_factory.mktemp("eval")
    checkpoint = make_checkpoint(folder / "run" / "best.pt", CLASSES)
    return checkpoint, make_manifest(folder, CLASSES)


def test_eval_all_metrics_writes_table_plot_and_json(files, tmp_path):
    checkpoint, manifest = files
    args = ["eval", str(checkpoint), "--data", str(manifest), "--metric", "all"]
    args += ["--json", str(tmp_path / "m.json"), "--save-detections", str(tmp_path / "d.json")]
    result = runner.invoke(app, [*args, "--batch", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for text in ("circle", "square", "mean", "VOC07 AP50", "VOC AP50", "COCO AP", "AP75"):
        assert text in result.stdout
    assert (checkpoint.parent / "best_pr_test.png").is_file()  # default: next to the checkpoint

    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["split"] == "test" and metrics["num_images"] == 4
    assert set(metrics["metrics"]) == {
        "voc07_map50", "voc_map50", "coco_ap", "coco_ap50", "coco_ap75", "coco_aps",
        "coco_apm", "coco_apl",
    }  # fmt: skip
    assert [row["num_gt"] for row in metrics["per_class"]] == [4, 2]
    assert metrics["checkpoint"] == str(checkpoint)
    assert metrics["precision"] == "float32"  # eval's default: the reference figures
    assert "float32" in result.stderr

    detections = json.loads((tmp_path / "d.json").read_text())
    assert {d["category_id"] for d in detections} <= {3, 8}  # original category ids
    assert {d["image_id"] for d in detections} <= {100, 101, 102, 103}
    sizes = {100: (80, 120), 101: (100, 100), 102: (120, 90), 103: (64, 64)}
    for d in detections:  # xywh_topleft inside the original image
        x, y, w, h = d["bbox"]
        height, width = sizes[d["image_id"]]
        assert min(x, y, w, h) >= 0
        assert x + w <= width + 1e-3 and y + h <= height + 1e-3


def test_eval_split_and_plot_options(files, tmp_path):
    checkpoint, manifest = files
    plot = tmp_path / "pr.png"
    args = ["eval", str(checkpoint), "--data", str(manifest), "--split", "val", "--plot", str(plot)]
    result = runner.invoke(app, [*args, "--metric", "voc", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "VOC AP50" in result.stdout and "VOC07" not in result.stdout
    assert "square" in result.stdout and "no ground truth in 'val' for square" in result.stdout
    assert plot.is_file()


def test_eval_rejects_other_classes(files, tmp_path):
    checkpoint, _ = files
    other = make_manifest(tmp_path, ["cat", "dog", "cow"])
    result = runner.invoke(app, ["eval", str(checkpoint), "--data", str(other), "--device", "cpu"])
    assert result.exit_code == 1
    assert "--data" in result.output and "cow" in result.output


def test_eval_in_bf16_records_its_precision(files, tmp_path):
    checkpoint, manifest = files
    args = ["eval", str(checkpoint), "--data", str(manifest), "--metric", "voc", "--device", "cpu"]
    for precision in ("float32", "bf16"):
        json_path = tmp_path / f"{precision}.json"
        result = runner.invoke(app, [*args, "--precision", precision, "--json", str(json_path)])
        assert result.exit_code == 0, result.output
    exact, fast = (json.loads((tmp_path / f"{p}.json").read_text()) for p in ("float32", "bf16"))
    assert (exact["precision"], fast["precision"]) == ("float32", "bf16")
    assert fast["num_images"] == exact["num_images"]


def test_eval_usage_errors(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "x.pt"), "--metric", "map"])
    assert result.exit_code == 2 and "--metric 'map'" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "x.pt"), "--precision", "fp16"])
    assert result.exit_code == 2 and "--precision 'fp16'" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "missing.pt"), "--device", "cpu"])
    assert result.exit_code == 1 and "missing.pt" in result.output


def test_eval_table_keeps_every_number_in_a_file(tmp_path) -> None:
    """Piped (no terminal, no COLUMNS) the all-metrics table keeps every figure that a
    400-column terminal shows, and its title is not wrapped mid-phrase."""
    import re

    names = ["red_blood_cell_in_a_thin_smear", "white_blood_cell_of_any_kind"]
    folder = tmp_path / "a_folder_with_a_rather_long_name_as_user_folders_often_have"
    checkpoint = make_checkpoint(folder / "run" / "best.pt", names)
    manifest = make_manifest(folder, names)
    args = ["eval", str(checkpoint), "--data", str(manifest), "--metric", "all", "--device", "cpu"]
    piped = runner.invoke(app, args, env={"COLUMNS": None})
    wide = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert piped.exit_code == 0 and wide.exit_code == 0, piped.output

    def numbers(text: str) -> list[str]:
        return re.findall(r"\d+(?:\.\d+)?", text)

    assert "…" not in piped.stdout
    assert numbers(piped.stdout) == numbers(wide.stdout)
    title = [line for line in wide.stdout.splitlines() if line.strip()][0].strip()
    assert title in piped.stdout


def test_unknown_split_lists_the_datas_splits(files) -> None:
    checkpoint, manifest = files
    args = ["eval", str(checkpoint), "--data", str(manifest), "--split", "foo", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith("error: --split 'foo'") and "test, val" in line
    assert "data.test_split" not in line and "data.train_split" not in line
