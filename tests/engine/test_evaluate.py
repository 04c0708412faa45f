"""The evaluator: the model-free path, its JSON files, and (when the data set and model are
importable) a tiny detector run through the whole pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from ssdcli.engine.evaluate import (
    METRIC_KEYS,
    evaluate_detections,
    write_coco_results,
    write_metrics_json,
)
from ssdcli.engine.metrics import ImageDetections
from ssdcli.errors import EvalError


@dataclass
class Rec:
    image_id: str
    size_hw: tuple[int, int]
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray


def rec(image_id, boxes, labels, difficult=None) -> Rec:
    n = len(labels)
    return Rec(
        image_id,
        (100, 120),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
        np.zeros(n, bool) if difficult is None else np.asarray(difficult, bool),
        np.zeros(n, bool),
    )


def det(boxes, scores, labels) -> ImageDetections:
    return ImageDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


A, B, FAR = [10, 10, 49, 49], [60, 20, 99, 79], [0, 80, 9, 99]
NAMES = ["cat", "dog", "cow"]


def scene():
    # cat: one TP of two objects -> recall .5 at precision 1: VOC07 6/11, VOC area 0.5.
    # dog: one TP, then an FP (FAR) -> AP 1. cow: no ground truth (a detection only) -> NaN.
    records = [rec("000005", [A, B], [0, 1]), rec("000007", [A], [0], difficult=[False])]
    detections = [
        det([A, B, FAR], [0.9, 0.8, 0.3], [0, 1, 1]),
        det([FAR], [0.2], [2]),
    ]
    return records, detections


def test_all_families_in_one_result():
    records, detections = scene()
    result = evaluate_detections(records, detections, NAMES, "all", split="test")
    assert result.per_class["voc07"][0] == pytest.approx(6 / 11)
    assert result.per_class["voc"][0] == pytest.approx(0.5)
    assert result.per_class["voc"][1] == 1.0 and np.isnan(result.per_class["voc"][2])
    assert result.metrics["voc_map50"] == pytest.approx(0.75)  # (0.5 + 1) / 2, cow left out
    assert result.metrics["voc07_map50"] == pytest.approx((6 / 11 + 1) / 2)
    # COCO, 101 points: cat reaches recall .5 at precision 1 -> 51/101; dog 1 (IoU 1 boxes).
    assert result.per_class["coco50"][0] == pytest.approx(51 / 101)
    assert result.metrics["coco_ap50"] == pytest.approx((51 / 101 + 1) / 2)
    assert set(result.metrics) == {k for keys in METRIC_KEYS.values() for k in keys}
    assert list(result.num_gt) == [2, 1, 0]
    assert result.coco_image_ids == [5, 7] and result.category_ids == [1, 2, 3]


def test_single_family_and_errors():
    records, detections = scene()
    result = evaluate_detections(records, detections, NAMES, "voc07")
    assert set(result.metrics) == {"voc07_map50"} and set(result.per_class) == {"voc07"}
    with pytest.raises(EvalError, match="unknown metric"):
        evaluate_detections(records, detections, NAMES, "map")
    with pytest.raises(EvalError, match="no images"):
        evaluate_detections([], [], NAMES, "voc")


def test_json_files(tmp_path):
    records, detections = scene()
    result = evaluate_detections(
        records, detections, NAMES, "voc", category_ids=[17, 18, 21], split="test"
    )
    metrics = json.loads(
        write_metrics_json(result, tmp_path / "m.json", checkpoint="b.pt").read_text()
    )
    assert metrics["metrics"] == {"voc_map50": 0.75}
    assert metrics["checkpoint"] == "b.pt" and metrics["num_images"] == 2
    assert metrics["per_class"][2] == {"class": "cow", "num_gt": 0, "voc": None}  # NaN -> null
    coco = json.loads(write_coco_results(result, tmp_path / "d.json").read_text())
    assert len(coco) == 4
    # Original category ids and image ids, xywh_topleft: A = (10, 10) to (49, 49) -> w = h = 39.
    assert coco[0] == {"image_id": 5, "category_id": 17, "bbox": [10, 10, 39, 39], "score": 0.9}
    assert coco[3]["image_id"] == 7 and coco[3]["category_id"] == 21


def _tiny_setup(tmp_path):
    """A synthetic data set and an untrained tiny detector, or a skip while those are missing."""
    data = pytest.importorskip("ssdcli.data")
    if not hasattr(data, "DetectionDataset") or not hasattr(data, "build_manifest"):
        pytest.skip("ssdcli.data has no DetectionDataset/build_manifest yet")
    from ssdcli.config import load_recipe
    from ssdcli.model import build_detector

    recipe = load_recipe(
        "shapes_tiny",
        [
            f"data.root={tmp_path / 'shapes'}",
            "data.synthetic_images=12",
            "data.workers=0",
            "model.size_hw=[96,96]",
        ],
    )
    manifest = data.build_manifest(recipe.data)
    detector = build_detector(recipe, num_classes=len(manifest.class_names))
    return recipe, manifest, detector


def test_detector_over_a_split(tmp_path):
    import torch

    from ssdcli.engine.evaluate import evaluate_detector

    recipe, manifest, detector = _tiny_setup(tmp_path)
    split = recipe.data.val_split
    torch.manual_seed(0)
    calls = []
    detector.model.train()
    result = evaluate_detector(
        detector, manifest, split, recipe, "voc", "cpu", batch_size=5,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    records = [manifest.records[i] for i in manifest.split_indices(split)]
    assert len(result.detections) == len(records) and result.image_ids[0] == records[0].image_id
    assert calls[-1] == (len(records), len(records))
    assert detector.model.training  # mode restored
    for record, found in zip(records, result.detections, strict=True):
        height, width = record.size_hw  # detections in pixels of the original image
        assert found.boxes_D4.dtype == np.float32 and found.labels_D.dtype == np.int64
        assert np.all(found.boxes_D4[:, [0, 2]] <= width) and np.all(
            found.boxes_D4[:, [1, 3]] <= height
        )
        assert np.all(found.boxes_D4 >= 0)
    assert 0.0 <= result.metrics["voc_map50"] <= 1.0

    # Feeding the ground truth back as detections scores AP 1 through the same path.
    perfect = [det(r.boxes_xyxy, np.ones(len(r.labels)), r.labels) for r in records]
    again = evaluate_detections(records, perfect, manifest.class_names, "voc")
    assert again.metrics["voc_map50"] == pytest.approx(1.0)
