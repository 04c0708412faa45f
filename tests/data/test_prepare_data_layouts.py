"""`ssd prepare-data` on data sets as they come: paddy, flat VOC, YOLO exports, no splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from layout_builders import IMAGES, coco_json, voc_xml, write_image, write_voc_flat, write_yolo_yaml
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.data.records import Manifest

runner = CliRunner()
PADDY = Path(__file__).resolve().parents[3] / "shared" / "data" / "paddy"


def _run(*args: str):
    return runner.invoke(app, ["prepare-data", *args], catch_exceptions=False)


def test_paddy_as_exported(tmp_path: Path) -> None:
    if not (PADDY / "train" / "_annotations.coco.json").is_file():
        pytest.skip(f"paddy data set not found at {PADDY}")
    result = _run(str(PADDY), "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert "699 images, 2690 objects, 3 classes" in result.output
    parent = [line for line in result.output.splitlines() if "supercategory" in line]
    assert len(parent) == 1 and "'a'" in parent[0] and "not a class" in parent[0]
    manifest = Manifest.load(tmp_path / "m")
    assert set(manifest.splits) == {"train", "valid", "test", "trainval"}
    assert manifest.class_names == ["Bacterial_Blight", "Brown_Spot", "Rice_Blast"]


def test_flat_voc_without_image_sets(tmp_path: Path) -> None:
    root = write_voc_flat(tmp_path / "voc", subfolders=True)
    result = _run(str(root), "--out", str(tmp_path / "m"), "--strict")
    assert result.exit_code == 0, result.output
    assert "3 images, 3 objects, 2 classes" in result.output
    assert set(Manifest.load(tmp_path / "m").splits) == {"train", "val", "test", "trainval"}


def test_yolo_export_with_parent_paths(tmp_path: Path) -> None:
    root = write_yolo_yaml(tmp_path / "yolo", roboflow=True)
    result = _run(str(root / "data.yaml"), "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert "'../' dropped" in result.output
    manifest = Manifest.load(tmp_path / "m")
    assert {k: len(v) for k, v in manifest.splits.items()} == {
        "train": 1,
        "val": 1,
        "test": 1,
        "trainval": 2,
    }
    assert any("'../' dropped" in note for note in manifest.notes)


def test_folder_without_splits_gets_them(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for i in range(30):
        write_image(root / f"p{i}.jpg", 32, 40, seed=i)
        (root / f"p{i}.xml").write_text(voc_xml(f"p{i}.jpg", 32, 40, [("cat", (1, 1, 9, 9))]))
    write_image(root / "copy.jpg", 64, 80, seed=0)  # p0 at twice the size
    (root / "copy.xml").write_text(voc_xml("copy.jpg", 64, 80, [("cat", (2, 2, 18, 18))]))
    args = [str(root), "--out", str(tmp_path / "m"), "--val", "0.2", "--test", "0.1"]
    result = _run(*args, "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "made train" in result.output and "1 group(s) of the same picture" in result.output
    manifest = Manifest.load(tmp_path / "m")
    assert manifest.split_made == {"val": 0.2, "test": 0.1, "seed": 5, "duplicate_groups": 1}
    made = {s: ix for s, ix in manifest.splits.items() if s != "trainval"}
    split_of = {manifest.records[i].image_id: s for s, ix in made.items() for i in ix}
    assert split_of["copy"] == split_of["p0"]
    first = (tmp_path / "m" / "manifest.json").read_bytes()
    assert _run(*args, "--seed", "5").exit_code == 0
    assert (tmp_path / "m" / "manifest.json").read_bytes() == first


def test_nothing_fits_is_one_line_naming_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["prepare-data", str(tmp_path / "empty"), "--out", "x"])
    assert result.exit_code == 2
    assert "data.yaml" in result.output and "--format" in result.output
    assert "Traceback" not in result.output


def test_broken_annotation_is_one_line_naming_the_file(tmp_path: Path) -> None:
    root = write_voc_flat(tmp_path / "voc")
    (root / "b.xml").write_text("<annotation><object>\n<name>cat</name>\n")
    result = runner.invoke(app, ["prepare-data", str(root), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "b.xml:3: malformed XML" in result.output and "Traceback" not in result.output


def test_coco_images_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text(json.dumps(coco_json(list(IMAGES))))
    for stem, (height, width, _) in IMAGES.items():
        write_image(tmp_path / "pictures" / f"{stem}.jpg", height, width, seed=ord(stem))
    out = ["--out", str(tmp_path / "m"), "--strict"]
    result = _run(str(tmp_path / "labels.json"), "--images-dir", str(tmp_path / "pictures"), *out)
    assert result.exit_code == 0, result.output
    assert "3 images, 3 objects, 2 classes" in result.output
    missing = runner.invoke(
        app, ["prepare-data", str(tmp_path / "labels.json"), "--images-dir", "nowhere", *out]
    )
    assert missing.exit_code == 1 and "--images-dir" in missing.output
