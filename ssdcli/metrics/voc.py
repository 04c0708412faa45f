"""Detection metrics in pure numpy: PASCAL VOC AP (VOC2007 11-point and VOC2010+ area) and COCO.

Inputs are per-image ground truths and detections in ``xyxy`` pixels of the original image
(0-based continuous coordinates: VOC devkit coordinates minus 1). Labels are foreground indices
``0..C-1``.

VOC AP follows the official devkit's ``voc_eval.py`` step for step:

* detections of one class are sorted by descending score over the whole split (stable, so ties
  keep image order as the MATLAB devkit's ``sort`` does);
* overlap uses the devkit's inclusive widths ``x2 - x1 + 1`` (shift-invariant, so the 0-based boxes
  give the same numbers as the devkit's 1-based ones);
* each detection takes the ground truth of its class with the largest overlap (first on ties);
  it is a true positive when that overlap is strictly above the threshold (0.5), that ground
  truth is not difficult and not yet taken; a second detection on a taken ground truth is a false
  positive; a detection on a difficult ground truth is neither;
* ``npos`` counts the non-difficult ground truths; precision gets the devkit's monotone envelope.

Crowd ground truths (``iscrowd``, COCO only) have no devkit counterpart and count as difficult.
A class without (non-difficult) ground truth has an undefined AP: it is reported as NaN and left out
of the mean (the devkit would divide by zero; COCO leaves such classes out the same way).

COCO metrics go through pycocotools (see :mod:`ssdcli.metrics.coco`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ssdcli.errors import EvalError

# voc_eval.py's thresholds, float rounding included (np.arange gives 0.30000000000000004, ...), so
# that AP07 matches the reference implementation bit for bit.
_VOC07_RECALL_THRESHOLDS = np.arange(0.0, 1.1, 0.1)


class GroundTruthLike(Protocol):
    """One image's ground truth (``ssdcli.data.Record`` satisfies it).

    Attributes:
        boxes_xyxy: float [G, 4], xyxy, pixels of the original image (0-based continuous).
        labels: int [G], foreground class index 0..C-1.
        difficult: bool [G].
        iscrowd: bool [G].
    """

    boxes_xyxy: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections as numpy arrays.

    Attributes:
        boxes_D4: float32 [D, 4], xyxy, pixels of the original image.
        scores_D: float32 [D].
        labels_D: int64 [D], foreground class index 0..C-1.
    """

    boxes_D4: np.ndarray
    scores_D: np.ndarray
    labels_D: np.ndarray

    @classmethod
    def empty(cls) -> ImageDetections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class PRCurve:
    """One class's precision/recall points as the devkit computes them.

    Attributes:
        recall: float64 [N], after each detection of the class in descending-score order.
        precision: float64 [N], raw (not the envelope).
        scores: float32 [N], the detection scores in the same order.
        num_gt: ground truths counted as positives (non-difficult, non-crowd; devkit ``npos``).
    """

    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray
    num_gt: int

    def ap(self, use_07_metric: bool) -> float:
        """VOC AP of this curve; NaN when the class has no ground truth."""
        if self.num_gt == 0:
            return float("nan")
        return voc_ap(self.recall, self.precision, use_07_metric)


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
    """Average precision from a devkit PR curve.

    Args:
        recall: float64 [N], non-decreasing.
        precision: float64 [N].
        use_07_metric: True for VOC2007's 11-point interpolation (mean over t = 0, 0.1, ..., 1
            of the maximum precision at recall >= t, 0 where no point reaches t); False for
            VOC2010+'s area under the monotone precision envelope.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        # max(precision[recall >= t]) == suffix maximum from the first index whose recall >= t.
        suffix_max = np.maximum.accumulate(precision[::-1])[::-1]
        first = np.searchsorted(recall, _VOC07_RECALL_THRESHOLDS, side="left")
        padded = np.append(suffix_max, 0.0)  # index N: no point reaches t
        return float(np.sum(padded[first] / 11.0))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # devkit envelope, right to left
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def _devkit_iou(dets_D4: np.ndarray, gts_G4: np.ndarray) -> np.ndarray:
    """IoU with the devkit's inclusive widths (``x2 - x1 + 1``), float64 [D, G]."""
    ixmin = np.maximum(dets_D4[:, None, 0], gts_G4[None, :, 0])
    iymin = np.maximum(dets_D4[:, None, 1], gts_G4[None, :, 1])
    ixmax = np.minimum(dets_D4[:, None, 2], gts_G4[None, :, 2])
    iymax = np.minimum(dets_D4[:, None, 3], gts_G4[None, :, 3])
    iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
    ih = np.maximum(iymax - iymin + 1.0, 0.0)
    inter = iw * ih
    det_area = (dets_D4[:, 2] - dets_D4[:, 0] + 1.0) * (dets_D4[:, 3] - dets_D4[:, 1] + 1.0)
    gt_area = (gts_G4[:, 2] - gts_G4[:, 0] + 1.0) * (gts_G4[:, 3] - gts_G4[:, 1] + 1.0)
    return inter / (det_area[:, None] + gt_area[None, :] - inter)


def _check_image(
    index: int,
    num_classes: int,
    boxes: np.ndarray,
    labels: np.ndarray,
    other: np.ndarray,
    what: str,
) -> None:
    """EvalError when one image's arrays disagree in length or hold labels outside 0..C-1."""
    if not len(boxes) == len(labels) == len(other):
        raise EvalError(
            f"{what} of image #{index}: {len(boxes)} boxes, {len(labels)} labels and "
            f"{len(other)} flags/scores; every object needs one of each"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise EvalError(
            f"{what} of image #{index} has a label ({int(labels.min())}..{int(labels.max())}) "
            f"outside 0..{num_classes - 1}; check that the detector and the data set use the "
            "same classes"
        )


def voc_pr_curves(
    ground_truths: Sequence[GroundTruthLike],
    detections: Sequence[ImageDetections],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> list[PRCurve]:
    """Matches detections to ground truths as the VOC devkit does and returns one curve per class.

    The only Python loop is over images (one small IoU matrix each); sorting and the greedy
    "first detection takes the ground truth" rule are vectorised over the whole split: in the
    devkit a detection's best-overlap ground truth does not depend on earlier matches, so the
    true positives are exactly the first detection (in score order) of each non-difficult ground
    truth it overlaps by more than ``iou_threshold``.

    Args:
        ground_truths: one per image.
        detections: one per image, same order.
        num_classes: C, foreground classes.
        iou_threshold: devkit ``ovthresh``; a match needs overlap strictly above it.

    Returns:
        C curves, index = class label.
    """
    if len(ground_truths) != len(detections):
        raise EvalError(
            f"got detections for {len(detections)} images but ground truth for "
            f"{len(ground_truths)}; pass one detection set per image of the split"
        )
    gt_labels, gt_ignore, det_labels, det_scores, det_ovmax, det_gt = [], [], [], [], [], []
    offset = 0
    for index, (gt, det) in enumerate(zip(ground_truths, detections, strict=True)):
        g_boxes = np.asarray(gt.boxes_xyxy, np.float64).reshape(-1, 4)
        g_labels = np.asarray(gt.labels, np.int64).reshape(-1)
        g_ignore = np.asarray(gt.difficult, bool).reshape(-1) | np.asarray(gt.iscrowd, bool)
        d_boxes = np.asarray(det.boxes_D4, np.float64).reshape(-1, 4)
        d_labels = np.asarray(det.labels_D, np.int64).reshape(-1)
        d_scores = np.asarray(det.scores_D, np.float32).reshape(-1)
        _check_image(index, num_classes, g_boxes, g_labels, g_ignore, "ground truth")
        _check_image(index, num_classes, d_boxes, d_labels, d_scores, "detections")
        gt_labels.append(g_labels)
        gt_ignore.append(g_ignore)
        det_labels.append(d_labels)
        det_scores.append(d_scores)
        ovmax = np.full(d_labels.size, -1.0)
        jmax = np.zeros(d_labels.size, np.int64)
        if d_labels.size and g_labels.size:
            iou = _devkit_iou(d_boxes, g_boxes)
            iou[d_labels[:, None] != g_labels[None, :]] = -1.0  # only same-class ground truths
            jmax = iou.argmax(axis=1)  # first maximum, as the devkit's argmax
            ovmax = iou[np.arange(d_labels.size), jmax]
        det_ovmax.append(ovmax)
        det_gt.append(jmax + offset)
        offset += g_labels.size

    gt_labels_all = np.concatenate(gt_labels) if gt_labels else np.zeros(0, np.int64)
    gt_ignore_all = np.concatenate(gt_ignore) if gt_ignore else np.zeros(0, bool)
    labels = np.concatenate(det_labels) if det_labels else np.zeros(0, np.int64)
    scores = np.concatenate(det_scores) if det_scores else np.zeros(0, np.float32)
    ovmax_all = np.concatenate(det_ovmax) if det_ovmax else np.zeros(0)
    gt_index = np.concatenate(det_gt) if det_gt else np.zeros(0, np.int64)

    # Class-major, then descending score; lexsort is stable, so ties keep image/detection order.
    order = np.lexsort((-scores.astype(np.float64), labels))
    labels, scores = labels[order], scores[order]
    matched = ovmax_all[order] > iou_threshold
    gt_index = np.where(matched, gt_index[order], 0)
    ignored = matched & gt_ignore_all[gt_index] if gt_ignore_all.size else np.zeros_like(matched)
    candidates = np.flatnonzero(matched & ~ignored)
    _, first = np.unique(gt_index[candidates], return_index=True)
    tp = np.zeros(labels.size, bool)
    tp[candidates[first]] = True
    fp = ~tp & ~ignored

    npos = np.bincount(gt_labels_all[~gt_ignore_all], minlength=num_classes)
    bounds = np.searchsorted(labels, np.arange(num_classes + 1), side="left")
    curves = []
    for c in range(num_classes):
        lo, hi = bounds[c], bounds[c + 1]
        tp_c = np.cumsum(tp[lo:hi], dtype=np.float64)
        fp_c = np.cumsum(fp[lo:hi], dtype=np.float64)
        recall = tp_c / float(max(npos[c], 1))
        precision = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
        curves.append(PRCurve(recall, precision, scores[lo:hi], int(npos[c])))
    return curves


def class_aps(curves: Sequence[PRCurve], use_07_metric: bool) -> np.ndarray:
    """Per-class VOC AP, float64 [C]; NaN for classes without ground truth."""
    return np.array([curve.ap(use_07_metric) for curve in curves], np.float64)


def mean_ap(aps: np.ndarray) -> float:
    """Mean over the classes whose AP is defined (not NaN); NaN when none is."""
    aps = np.asarray(aps, np.float64)
    defined = aps[~np.isnan(aps)]
    return float(defined.mean()) if defined.size else float("nan")
