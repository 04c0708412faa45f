"""The evaluator: the model-free path, its JSON files, and a network run through the whole
pipeline (data set, post-processing, metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from ssdcli.errors import EvalError
from ssdcli.evaluate.evaluator import (
    METRIC_KEYS,
    evaluate_detections,
    write_coco_results,
    write_metrics_json,
)
from ssdcli.metrics.voc import ImageDetections


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


GT_BOXES = [  # per image: non-overlapping objects, xyxy pixels of the original image
    ([[4, 6, 40, 30], [50, 40, 110, 75]], [0, 1]),
    ([[10, 10, 60, 90]], [2]),
    ([[0, 0, 30, 20], [35, 25, 70, 60], [5, 70, 45, 99]], [1, 1, 0]),
]
SIZES_HW = [(80, 120), (100, 80), (100, 100)]


def oracle_setup(tmp_path):
    """A manifest of constant-colour images (colour = image number) and a network that reads the
    colour back and answers the ground truth exactly: every metric must come out as 1."""
    pytest.importorskip("ssdcli.data.pipeline.loader")
    import cv2
    import torch

    from ssdcli.boxes import BoxCoder
    from ssdcli.config import load_recipe
    from ssdcli.data.records import Manifest, Record

    recipe = load_recipe(None, ["model.size_hw=[64,64]", "data.workers=0"])
    records = []
    for i, ((boxes, labels), (h, w)) in enumerate(zip(GT_BOXES, SIZES_HW, strict=True)):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((h, w, 3), 40 * (i + 1), np.uint8))
        records.append(Record.make(f"im{i}", path, (h, w), boxes, labels))
    names = ["a", "b", "c"]
    manifest = Manifest(names, records, {"test": [2, 0, 1]}, None, str(tmp_path), "voc")

    # 4 x 4 grid of priors (normalised cxcywh); ground truth j of an image uses prior j.
    centres = (torch.arange(4, dtype=torch.float32) + 0.5) / 4
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")
    priors_P4 = torch.stack(
        [cx.flatten(), cy.flatten(), torch.full((16,), 0.3), torch.full((16,), 0.3)], 1
    )
    coder = BoxCoder(tuple(recipe.priors.variances))
    mean, std = recipe.model.input.mean[0], recipe.model.input.std[0]

    class Oracle(torch.nn.Module):
        num_classes = len(names)

        def forward(self, images_BCHW):
            pixel = images_BCHW[:, 0].mean(dim=(1, 2)) * std + mean
            cls_BPK = torch.zeros(len(images_BCHW), 16, 4)
            cls_BPK[:, :, 0] = 10.0  # background everywhere ...
            deltas_BP4 = torch.zeros(len(images_BCHW), 16, 4)
            for b, value in enumerate(pixel.tolist()):
                i = round(value / 40) - 1
                (h, w), (boxes, labels) = SIZES_HW[i], GT_BOXES[i]
                gt = torch.tensor(boxes, dtype=torch.float32) / torch.tensor([w, h, w, h])
                n = len(labels)
                deltas_BP4[b, :n] = coder.encode(gt, priors_P4[:n])
                cls_BPK[b, torch.arange(n), torch.tensor(labels) + 1] = 20.0  # ... but here
            return cls_BPK, deltas_BP4

    return recipe, manifest, SimpleNamespace(model=Oracle(), priors_P4=priors_P4)


def test_detector_over_a_split_scores_an_oracle_perfectly(tmp_path):
    from ssdcli.evaluate.evaluator import evaluate_detector

    recipe, manifest, detector = oracle_setup(tmp_path)
    calls = []
    detector.model.train()
    result = evaluate_detector(
        detector, manifest, "test", recipe, "all", "cpu", batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(2, 3), (3, 3)]
    assert detector.model.training  # mode restored
    assert result.image_ids == ["im2", "im0", "im1"]  # the split's order
    for k, i in enumerate([2, 0, 1]):  # detections back in pixels of each original image
        found = result.detections[k]
        order = np.lexsort(found.boxes_D4.T[::-1])
        expected = np.array(GT_BOXES[i][0], np.float32)
        np.testing.assert_allclose(
            found.boxes_D4[order], expected[np.lexsort(expected.T[::-1])], atol=1e-3
        )
        assert found.boxes_D4.dtype == np.float32 and found.labels_D.dtype == np.int64
    for key in ("voc07_map50", "voc_map50", "coco_ap", "coco_ap50", "coco_ap75"):
        assert result.metrics[key] == pytest.approx(1.0), key
    assert result.seconds > 0
