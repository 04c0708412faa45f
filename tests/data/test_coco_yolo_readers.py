"""The COCO and YOLO readers on tiny data sets written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssdcli.data.readers.coco import read_coco
from ssdcli.data.readers.yolo import label_path, read_yolo
from ssdcli.errors import DataError


def _coco(tmp_path: Path, write_image, annotations: list[dict], extra_images=()) -> Path:
    root = tmp_path / "coco"
    write_image(root / "val2017" / "a.jpg", 48, 64)
    write_image(root / "val2017" / "b.jpg", 48, 64, seed=1)
    images = [
        {"id": 7, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 9, "file_name": "b.jpg", "width": 70, "height": 48},  # width mismatch
        *extra_images,
    ]
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 5, "name": "zebra"}, {"id": 1, "name": "person"}],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data, indent=1))
    return root


def test_coco_boxes_categories_and_crowd(tmp_path: Path, write_image) -> None:
    anns = [
        {"id": 1, "image_id": 7, "category_id": 5, "bbox": [10, 5, 20.5, 8], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 30, 30], "iscrowd": 1},
    ]
    manifest = read_coco(_coco(tmp_path, write_image, anns))
    assert manifest.class_names == ["person", "zebra"]  # ordered by category id
    assert manifest.category_ids == [1, 5]
    record = manifest.records[0]
    assert record.image_id == "7"
    np.testing.assert_allclose(record.boxes_xyxy, [[10, 5, 30.5, 13], [0, 0, 30, 30]])
    np.testing.assert_array_equal(record.labels, [1, 0])
    np.testing.assert_array_equal(record.iscrowd, [False, True])
    assert manifest.splits == {"val2017": [0, 1]}
    assert [p.kind for p in manifest.problems] == ["size_mismatch"]


def test_coco_problems(tmp_path: Path, write_image) -> None:
    anns = [
        {"id": 1, "image_id": 7, "category_id": 5, "bbox": [50, 5, 20, 8]},  # out of bounds
        {"id": 2, "image_id": 7, "category_id": 5, "bbox": [1, 1, 0, 8]},  # zero width
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 8]},  # unknown category
        {"id": 4, "image_id": 99, "category_id": 5, "bbox": [1, 1, 5, 8]},  # no such image
        {"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 8]},
        {"id": 6, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 8]},  # duplicate
    ]
    missing = {"id": 11, "file_name": "gone.jpg", "width": 64, "height": 48}
    manifest = read_coco(
        _coco(tmp_path, write_image, anns, [missing]), class_names=["zebra", "person"]
    )
    assert manifest.category_ids == [5, 1]
    assert sorted(p.kind for p in manifest.problems) == sorted(
        [
            "out_of_bounds",
            "zero_area",
            "unknown_class",
            "orphan_annotation",
            "duplicate",
            "missing_image",
            "size_mismatch",
        ]
    )
    record = manifest.records[0]
    np.testing.assert_allclose(record.boxes_xyxy, [[50, 5, 64, 13], [1, 1, 6, 9]])
    np.testing.assert_array_equal(record.labels, [0, 1])
    assert len(manifest.records) == 2


def test_coco_malformed_json_names_file_and_line(tmp_path: Path, write_image) -> None:
    root = _coco(tmp_path, write_image, [])
    path = root / "annotations" / "instances_val2017.json"
    path.write_text('{\n "images": [],\n "annotations": [,]\n}\n')
    with pytest.raises(DataError, match=r"instances_val2017\.json:3: malformed JSON"):
        read_coco(root)


def test_coco_bad_bbox_names_the_annotation(tmp_path: Path, write_image) -> None:
    anns = [{"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 2, 3]}]
    with pytest.raises(DataError, match=r"annotations\[0\] 'bbox'"):
        read_coco(_coco(tmp_path, write_image, anns))


def _yolo(tmp_path: Path, write_image, labels: dict[str, str]) -> Path:
    root = tmp_path / "yolo"
    for name in ("a", "b", "c"):
        write_image(root / "images" / "train" / f"{name}.jpg", 50, 100)
    write_image(root / "images" / "val" / "a.jpg", 50, 100)
    for name, text in labels.items():
        path = root / "labels" / "train" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )
    return root


def test_yolo_boxes_and_problems(tmp_path: Path, write_image) -> None:
    labels = {
        "a": "1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.4 0.4\n",  # second box leaves the image
        "b": "7 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 0.0 0.2\n",  # unknown class, zero width
    }
    manifest = read_yolo(_yolo(tmp_path, write_image, labels))
    assert manifest.class_names == ["cat", "dog"]
    by_id = {r.image_id: r for r in manifest.records}
    assert set(by_id) == {"images/train/a", "images/train/b", "images/train/c", "images/val/a"}
    np.testing.assert_allclose(
        by_id["images/train/a"].boxes_xyxy, [[40, 15, 60, 35], [0, 0, 30, 15]]
    )
    np.testing.assert_array_equal(by_id["images/train/a"].labels, [1, 0])
    assert len(by_id["images/train/c"].labels) == 0  # no label file: background image
    assert sorted(p.kind for p in manifest.problems) == [
        "out_of_bounds",
        "unknown_class",
        "zero_area",
    ]
    unknown = next(p for p in manifest.problems if p.kind == "unknown_class")
    assert unknown.file.endswith("b.txt") and unknown.message.startswith("line 1")
    assert sorted(manifest.splits) == ["train", "val"]


def test_yolo_malformed_label_names_file_and_line(tmp_path: Path, write_image) -> None:
    root = _yolo(tmp_path, write_image, {"b": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n"})
    with pytest.raises(DataError, match=r"b\.txt:2: expected 'class cx cy w h'"):
        read_yolo(root)


def test_yolo_malformed_yaml_names_file_and_line(tmp_path: Path, write_image) -> None:
    root = _yolo(tmp_path, write_image, {})
    (root / "data.yaml").write_text("train: images/train\nnames: [cat, dog\nval: x\n")
    with pytest.raises(DataError, match=r"data\.yaml:\d+: malformed YAML"):
        read_yolo(root)


def test_yolo_label_path_replaces_the_last_images_folder() -> None:
    assert label_path(Path("/d/images/x/images/a.png")) == Path("/d/images/x/labels/a.txt")
