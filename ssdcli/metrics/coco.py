"""COCO box metrics (AP, AP50, AP75, APs, APm, APl) through pycocotools, from in-memory records.

Ground truths and detections arrive as in :mod:`ssdcli.metrics.voc` (``xyxy`` pixels of the
original image, labels ``0..C-1``) and are converted once, here, to COCO's ``xywh_topleft``:

* category ids are the data set's original ids when it has them (COCO), else ``label + 1``;
* image ids are the data set's ids when every one is an integer (COCO, numeric VOC names), else
  positions ``1..N``;
* ground-truth ``area`` is the box area ``w * h`` (records carry boxes, not masks), so APs/APm/APl
  split on box area;
* ``iscrowd`` is passed through; VOC ``difficult`` objects are passed as ``iscrowd=1`` too, the
  only "ignore" pycocotools has: a detection on them is neither a true nor a false positive, as in
  the VOC devkit (pycocotools measures overlap with such regions as intersection over the detection
  area);
* pycocotools reports -1 where a value is undefined (no ground truth); here that is NaN.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdcli.errors import EvalError
from ssdcli.metrics.voc import GroundTruthLike, ImageDetections

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass(frozen=True)
class CocoResult:
    """COCO summary and per-class values (NaN where undefined).

    Attributes:
        stats: ``COCO_STAT_NAMES`` -> value in [0, 1] (maxDets 100).
        ap_per_class: float64 [C], AP@[.5:.95] per class label.
        ap50_per_class: float64 [C], AP at IoU 0.5 (101-point) per class label.
    """

    stats: dict[str, float]
    ap_per_class: np.ndarray
    ap50_per_class: np.ndarray


def coco_image_ids(image_ids: Sequence[str]) -> list[int]:
    """Integer COCO image ids: the original ids when all are unique integers, else 1..N."""
    try:
        numeric = [int(image_id) for image_id in image_ids]
    except (TypeError, ValueError):
        numeric = []
    if len(numeric) == len(image_ids) and len(set(numeric)) == len(numeric):
        return numeric
    return list(range(1, len(image_ids) + 1))


def coco_category_ids(num_classes: int, category_ids: Sequence[int] | None = None) -> list[int]:
    """Category id per label: the data set's original ids, else ``label + 1``."""
    if category_ids is None:
        return list(range(1, num_classes + 1))
    if len(category_ids) != num_classes or len(set(category_ids)) != num_classes:
        raise EvalError(
            f"the data set lists {len(category_ids)} category ids for {num_classes} classes; "
            "rebuild the manifest (ssd prepare-data) so that each class has one unique id"
        )
    return [int(c) for c in category_ids]


def to_coco_results(
    detections: Sequence[ImageDetections],
    image_ids: Sequence[int],
    category_ids: Sequence[int],
) -> list[dict]:
    """COCO results entries (``image_id``, ``category_id``, ``bbox`` as xywh_topleft, ``score``).

    Args:
        detections: one per image; boxes xyxy, pixels of the original image.
        image_ids: COCO image id per image (same order).
        category_ids: COCO category id per class label.
    """
    cat_of = np.asarray(category_ids, np.int64)
    results: list[dict] = []
    for image_id, det in zip(image_ids, detections, strict=True):
        boxes = np.asarray(det.boxes_D4, np.float64).reshape(-1, 4)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
        cats = cat_of[np.asarray(det.labels_D, np.int64)].tolist()
        scores = np.asarray(det.scores_D, np.float64).tolist()
        results.extend(
            {"image_id": int(image_id), "category_id": c, "bbox": b, "score": s}
            for b, c, s in zip(xywh, cats, scores, strict=True)
        )
    return results


def _coco_from_dataset(dataset: dict):  # -> pycocotools.coco.COCO
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_ground_truth_dataset(
    ground_truths: Sequence[GroundTruthLike],
    image_ids: Sequence[int],
    category_ids: Sequence[int],
    class_names: Sequence[str],
) -> dict:
    """A COCO ground-truth dict (``images``, ``annotations``, ``categories``) from records."""
    images, annotations = [], []
    for image_id, gt in zip(image_ids, ground_truths, strict=True):
        size_hw = getattr(gt, "size_hw", None)
        image = {"id": int(image_id)}
        if size_hw is not None:
            image.update(height=int(size_hw[0]), width=int(size_hw[1]))
        images.append(image)
        boxes = np.asarray(gt.boxes_xyxy, np.float64).reshape(-1, 4)
        wh = boxes[:, 2:] - boxes[:, :2]
        crowd = np.asarray(gt.iscrowd, bool) | np.asarray(gt.difficult, bool)
        labels = np.asarray(gt.labels)
        for box, size, label, is_crowd in zip(boxes, wh, labels, crowd, strict=True):
            annotations.append(
                {
                    # ids start at 1: pycocotools treats a matched gt id of 0 as "unmatched".
                    "id": len(annotations) + 1,
                    "image_id": int(image_id),
                    "category_id": int(category_ids[int(label)]),
                    "bbox": [float(box[0]), float(box[1]), float(size[0]), float(size[1])],
                    "area": float(size[0] * size[1]),
                    "iscrowd": int(is_crowd),
                }
            )
    categories = [
        {"id": int(c), "name": str(n)} for c, n in zip(category_ids, class_names, strict=True)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_eval(
    ground_truths: Sequence[GroundTruthLike],
    detections: Sequence[ImageDetections],
    class_names: Sequence[str],
    category_ids: Sequence[int] | None = None,
    image_ids: Sequence[int] | None = None,
) -> CocoResult:
    """COCO bbox evaluation with pycocotools' ``COCOeval`` (its printing silenced).

    Args:
        ground_truths: one per image.
        detections: one per image, same order.
        class_names: C names, index = label.
        category_ids: the data set's original category id per label, or None for ``label + 1``.
        image_ids: COCO image id per image, or None for ``1..N``.
    """
    from pycocotools.cocoeval import COCOeval

    if len(ground_truths) != len(detections):
        raise EvalError(
            f"got detections for {len(detections)} images but ground truth for "
            f"{len(ground_truths)}; pass one detection set per image of the split"
        )
    if not ground_truths:
        raise EvalError("the split has no images; choose a split that has some (--split)")
    cats = coco_category_ids(len(class_names), category_ids)
    ids = list(image_ids) if image_ids is not None else list(range(1, len(ground_truths) + 1))
    gt_dataset = coco_ground_truth_dataset(ground_truths, ids, cats, class_names)
    coco_gt = _coco_from_dataset(gt_dataset)
    results = to_coco_results(detections, ids, cats)
    for index, result in enumerate(results, start=1):
        x, y, w, h = result["bbox"]
        result.update(id=index, area=w * h, iscrowd=0)
    coco_dt = _coco_from_dataset(
        {
            "images": gt_dataset["images"],
            "annotations": results,
            "categories": gt_dataset["categories"],
        }
    )
    evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {
        name: _undefined_to_nan(value)
        for name, value in zip(COCO_STAT_NAMES, evaluator.stats[:6], strict=True)
    }
    # precision: [T IoUs, R recalls, K categories (sorted ids), A area ranges, M maxDets]
    precision = evaluator.eval["precision"]
    column = {cat: k for k, cat in enumerate(evaluator.params.catIds)}
    ap = np.full(len(cats), np.nan)
    ap50 = np.full(len(cats), np.nan)
    for label, cat in enumerate(cats):
        p_all = precision[:, :, column[cat], 0, -1]
        p_50 = precision[0, :, column[cat], 0, -1]
        ap[label] = p_all[p_all > -1].mean() if np.any(p_all > -1) else np.nan
        ap50[label] = p_50[p_50 > -1].mean() if np.any(p_50 > -1) else np.nan
    return CocoResult(stats, ap, ap50)


def _undefined_to_nan(value: float) -> float:
    return float("nan") if value < 0 else float(value)
