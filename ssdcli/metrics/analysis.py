"""Error analysis at one score threshold: confusion matrix, false-positive kinds, worst images.

Pure numpy. Inputs are the same as :mod:`ssdcli.metrics.voc`'s: per image, ground truths and
detections with boxes in ``xyxy`` pixels of the original image, labels ``0..C-1``. IoU here is the
plain continuous one (``(x1 - x0) * (y1 - y0)`` areas), not the devkit's ``+ 1`` widths.

Matching of one image at score threshold ``t`` (:func:`match_image`):

1. **Same class.** Detections with ``score >= t`` are visited by descending score (stable on
   ties); each takes the not yet taken, non-ignored ground truth *of its class* with the highest
   IoU, if that IoU is ``>= 0.5``: a true positive (TP). Because the visit is greedy by score, a
   detection's TP status does not depend on detections scored below it, so the matching at any
   threshold is a prefix of the matching at ``t = 0`` (used by :func:`best_f1_threshold`).
2. **Ignored.** A remaining detection overlapping a difficult or crowd ground truth of its class
   at IoU ``>= 0.5`` is set aside (neither TP nor FP, as the VOC devkit does); difficult and crowd
   ground truths are never missed objects.
3. **Class confusions** (class-agnostic matching). The remaining detections, again by descending
   score, each take the not yet taken ground truth *of another class* with the highest IoU
   ``>= 0.5``: "object of class g detected as class c".

Confusion matrix ``M`` (int64 ``[C + 1, C + 1]``, rows = ground-truth class, columns = detected
class, index ``C`` = background): a TP adds to ``M[c, c]``, a confusion to ``M[g, c]``, any other
kept detection (false detection) to ``M[C, c]`` (background row), a ground truth nobody took (missed
object, FN) to ``M[g, C]`` (background column); ``M[C, C]`` stays 0. So row ``g`` sums to the
non-ignored ground truths of class g and column ``c`` to the kept, non-ignored detections of c.

False-positive kinds (every kept detection that is neither TP nor ignored gets exactly one, in this
order of precedence; IoU with any ground truth, difficult ones included):

* ``confusion``: matched to another class's ground truth in step 3 (an off-diagonal cell), or, if
  none of the kinds below applies, IoU ``>= 0.1`` with a ground truth of another class;
* ``duplicate``: IoU ``>= 0.5`` with a ground truth of its class that another detection took;
* ``localisation``: best IoU with a ground truth of its class in ``[0.1, 0.5)``;
* ``background``: IoU ``< 0.1`` with every ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdcli.metrics.voc import GroundTruthLike, ImageDetections

MATCH_IOU = 0.5  # a detection matches a ground truth at IoU >= this
NEAR_IOU = 0.1  # below this with every ground truth a false positive is "background"

# Per-detection kinds: TP, the four false-positive kinds, then the two "not counted" states.
TP, CONFUSION, DUPLICATE, LOCALISATION, BACKGROUND, IGNORED, BELOW = range(7)
FP_KINDS = ("confusion", "duplicate", "localisation", "background")
"""False-positive kind names, index ``k`` = kind code ``k + 1`` (columns of ``fp_breakdown``)."""
KIND_NAMES = ("TP", *FP_KINDS, "ignored", "below threshold")

# Per-ground-truth states.
GT_DETECTED, GT_CONFUSED, GT_MISSED, GT_IGNORED = range(4)


@dataclass(frozen=True)
class ImageMatch:
    """How one image's detections and ground truths matched at a threshold.

    Attributes:
        det_kind: int8 [D], one of ``TP``, ``CONFUSION``, ``DUPLICATE``, ``LOCALISATION``,
            ``BACKGROUND``, ``IGNORED``, ``BELOW`` (score under the threshold).
        det_gt: int64 [D], the ground truth a TP or step-3 confusion took, else -1.
        gt_state: int8 [G], ``GT_DETECTED``, ``GT_CONFUSED``, ``GT_MISSED`` or ``GT_IGNORED``.
        gt_det: int64 [G], the detection that took the ground truth, else -1.
    """

    det_kind: np.ndarray
    det_gt: np.ndarray
    gt_state: np.ndarray
    gt_det: np.ndarray

    @property
    def errors(self) -> int:
        """Off-diagonal confusion-matrix entries of this image (a class confusion counts once)."""
        fps = np.isin(self.det_kind, (DUPLICATE, LOCALISATION, BACKGROUND))
        fps |= (self.det_kind == CONFUSION) & (self.det_gt < 0)
        confused = (self.det_kind == CONFUSION) & (self.det_gt >= 0)
        return int(fps.sum() + confused.sum() + (self.gt_state == GT_MISSED).sum())


def box_iou(a_N4: np.ndarray, b_M4: np.ndarray) -> np.ndarray:
    """Continuous IoU of xyxy boxes, float64 [N, M] (0 for zero-area pairs)."""
    a = np.asarray(a_N4, np.float64).reshape(-1, 4)
    b = np.asarray(b_M4, np.float64).reshape(-1, 4)
    wh = np.clip(
        np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]),
        0.0,
        None,
    )
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _greedy(
    order: np.ndarray, iou_DG: np.ndarray, allowed_DG: np.ndarray, taken_G: np.ndarray
) -> np.ndarray:
    """Visits detections ``order``; each takes the free allowed ground truth of highest IoU >= 0.5.

    Only rows with some allowed IoU >= 0.5 enter the Python loop (few per image), so the cost
    stays small at ``t = 0`` with hundreds of detections per image. ``taken_G`` is updated.

    Returns:
        int64 [D]: the ground truth each detection took, -1 for none.
    """
    took = np.full(iou_DG.shape[0], -1, np.int64)
    candidate = np.where(allowed_DG, iou_DG, -1.0)
    hopeful = candidate.max(axis=1, initial=-1.0) >= MATCH_IOU
    # Once every ground truth some detection could take is taken, nobody else can match.
    free = int(((candidate >= MATCH_IOU).any(axis=0) & ~taken_G).sum())
    for d in order[hopeful[order]]:
        if free == 0:
            break
        row = np.where(taken_G, -1.0, candidate[d])
        g = int(row.argmax())
        if row[g] >= MATCH_IOU:
            took[d], taken_G[g] = g, True
            free -= 1
    return took


def match_image(gt: GroundTruthLike, det: ImageDetections, threshold: float) -> ImageMatch:
    """Matches one image's detections with ``score >= threshold`` (see the module docstring)."""
    g_boxes = np.asarray(gt.boxes_xyxy, np.float64).reshape(-1, 4)
    g_labels = np.asarray(gt.labels, np.int64).reshape(-1)
    ignored = np.asarray(gt.difficult, bool).reshape(-1) | np.asarray(gt.iscrowd, bool).reshape(-1)
    d_labels = np.asarray(det.labels_D, np.int64).reshape(-1)
    scores = np.asarray(det.scores_D, np.float64).reshape(-1)
    iou = box_iou(det.boxes_D4, g_boxes)  # [D, G]
    same = d_labels[:, None] == g_labels[None, :]
    kept = scores >= threshold
    order = np.argsort(-scores, kind="stable")
    order = order[kept[order]]

    taken = np.zeros(len(g_labels), bool)
    tp_gt = _greedy(order, iou, same & ~ignored[None, :], taken)
    kind = np.where(kept, BACKGROUND, BELOW).astype(np.int8)
    kind[tp_gt >= 0] = TP
    rest = kept & (tp_gt < 0)
    on_ignored = rest & (np.where(same & ignored[None, :], iou, 0.0).max(1, initial=0) >= MATCH_IOU)
    kind[on_ignored] = IGNORED
    rest &= ~on_ignored
    tp_taken = taken.copy()
    confused_gt = _greedy(order[rest[order]], iou, ~same & ~ignored[None, :], taken)

    best_same = np.where(same, iou, 0.0).max(axis=1, initial=0.0)
    best_other = np.where(~same, iou, 0.0).max(axis=1, initial=0.0)
    dup = (np.where(same & tp_taken[None, :], iou, 0.0).max(axis=1, initial=0.0)) >= MATCH_IOU
    # Precedence, lowest first so that higher kinds overwrite: background < confusion (weak) <
    # localisation < duplicate < confusion (matched in step 3).
    fp_kind = np.full(len(d_labels), BACKGROUND, np.int8)
    fp_kind[best_other >= NEAR_IOU] = CONFUSION
    fp_kind[best_same >= NEAR_IOU] = LOCALISATION
    fp_kind[dup] = DUPLICATE
    fp_kind[confused_gt >= 0] = CONFUSION
    kind[rest] = fp_kind[rest]

    det_gt = np.where(tp_gt >= 0, tp_gt, confused_gt)
    gt_det = np.full(len(g_labels), -1, np.int64)
    matched = np.flatnonzero(det_gt >= 0)
    gt_det[det_gt[matched]] = matched
    gt_state = np.full(len(g_labels), GT_MISSED, np.int8)
    gt_state[tp_taken] = GT_DETECTED
    gt_state[taken & ~tp_taken] = GT_CONFUSED
    gt_state[ignored] = GT_IGNORED
    return ImageMatch(kind, det_gt, gt_state, gt_det)


def confusion_matrix(
    matches: Sequence[ImageMatch],
    ground_truths: Sequence[GroundTruthLike],
    detections: Sequence[ImageDetections],
    num_classes: int,
) -> np.ndarray:
    """int64 [C + 1, C + 1]: rows ground-truth class, columns detected class, C = background."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    bg = num_classes
    for match, gt, det in zip(matches, ground_truths, detections, strict=True):
        g_labels = np.asarray(gt.labels, np.int64).reshape(-1)
        d_labels = np.asarray(det.labels_D, np.int64).reshape(-1)
        counted = ~np.isin(match.det_kind, (IGNORED, BELOW))
        rows = np.full(d_labels.size, bg, np.int64)
        took = match.det_gt >= 0
        rows[took] = g_labels[match.det_gt[took]]
        np.add.at(matrix, (rows[counted], d_labels[counted]), 1)
        missed = g_labels[match.gt_state == GT_MISSED]
        np.add.at(matrix, (missed, np.full(missed.size, bg)), 1)
    return matrix


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (float64, same shape); all-zero rows stay 0."""
    matrix = np.asarray(matrix, np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def fp_breakdown(
    matches: Sequence[ImageMatch], detections: Sequence[ImageDetections], num_classes: int
) -> np.ndarray:
    """int64 [C, 4]: false positives per detected class and kind (columns :data:`FP_KINDS`)."""
    table = np.zeros((num_classes, len(FP_KINDS)), np.int64)
    for match, det in zip(matches, detections, strict=True):
        fp = (match.det_kind >= CONFUSION) & (match.det_kind <= BACKGROUND)
        labels = np.asarray(det.labels_D, np.int64).reshape(-1)[fp]
        np.add.at(table, (labels, match.det_kind[fp].astype(np.int64) - 1), 1)
    return table


@dataclass(frozen=True)
class F1Curve:
    """Precision, recall and F1 over all classes against the score threshold.

    Attributes:
        thresholds: float64 [T], the distinct detection scores, descending.
        precision, recall, f1: float64 [T], for detections with ``score >= thresholds[i]``.
        best: index of the highest F1 (the highest threshold among ties).
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    best: int

    @property
    def threshold(self) -> float:
        """The F1-maximising threshold (0.5 when there are no detections)."""
        return float(self.thresholds[self.best]) if self.thresholds.size else 0.5


def f1_curve(
    ground_truths: Sequence[GroundTruthLike], detections: Sequence[ImageDetections]
) -> F1Curve:
    """Micro-averaged F1 at every threshold from one matching at ``t = 0`` (see step 1 above)."""
    scores, is_tp, counted, npos = [], [], [], 0
    for gt, det in zip(ground_truths, detections, strict=True):
        match = match_image(gt, det, 0.0)
        scores.append(np.asarray(det.scores_D, np.float64).reshape(-1))
        is_tp.append(match.det_kind == TP)
        counted.append(match.det_kind != IGNORED)
        npos += int((match.gt_state != GT_IGNORED).sum())
    s = np.concatenate(scores) if scores else np.zeros(0)
    tp = np.concatenate(is_tp) if is_tp else np.zeros(0, bool)
    keep = np.concatenate(counted) if counted else np.zeros(0, bool)
    s, tp = s[keep], tp[keep]
    order = np.argsort(-s, kind="stable")
    s, tp = s[order], tp[order]
    tp_cum = np.cumsum(tp, dtype=np.float64)
    fp_cum = np.cumsum(~tp, dtype=np.float64)
    # Last index of each distinct score (none when there are no detections).
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if s.size else np.zeros(0, np.int64)
    tp_t, fp_t = tp_cum[last], fp_cum[last]
    precision = tp_t / np.maximum(tp_t + fp_t, 1.0)
    recall = tp_t / max(npos, 1)
    f1 = 2 * tp_t / np.maximum(2 * tp_t + fp_t + (npos - tp_t), 1.0)
    best = int(np.argmax(f1)) if f1.size else 0
    return F1Curve(s[last], precision, recall, f1, best)


@dataclass(frozen=True)
class ErrorAnalysis:
    """Everything :func:`analyse` found at one threshold.

    Attributes:
        threshold: the score threshold used (detections with ``score >= threshold`` count).
        f1: the F1-against-threshold curve the default threshold came from.
        matches: one :class:`ImageMatch` per image.
        confusion: int64 [C + 1, C + 1] (see :func:`confusion_matrix`).
        fp_kinds: int64 [C, 4] (see :func:`fp_breakdown`).
        errors: int64 [N], off-diagonal confusion-matrix entries per image.
    """

    threshold: float
    f1: F1Curve
    matches: list[ImageMatch]
    confusion: np.ndarray
    fp_kinds: np.ndarray
    errors: np.ndarray


def analyse(
    ground_truths: Sequence[GroundTruthLike],
    detections: Sequence[ImageDetections],
    num_classes: int,
    threshold: float | None = None,
) -> ErrorAnalysis:
    """Matches every image at ``threshold`` (None: the F1-maximising one) and tabulates errors."""
    curve = f1_curve(ground_truths, detections)
    t = curve.threshold if threshold is None else float(threshold)
    matches = [match_image(g, d, t) for g, d in zip(ground_truths, detections, strict=True)]
    return ErrorAnalysis(
        threshold=t,
        f1=curve,
        matches=matches,
        confusion=confusion_matrix(matches, ground_truths, detections, num_classes),
        fp_kinds=fp_breakdown(matches, detections, num_classes),
        errors=np.array([m.errors for m in matches], np.int64),
    )
