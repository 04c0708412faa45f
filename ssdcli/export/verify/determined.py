"""Telling rounding apart from faults: which differences between two post-processings are ties.

Post-processing (:class:`~ssdcli.postprocess.PostProcessor`) makes hard decisions on scores: the
score threshold, the ``pre_nms_top_k`` best of each class, greedy NMS in score order, and the
``max_detections`` best of the image. Two correct implementations whose scores differ by float32
rounding (1e-7) decide differently wherever two candidates' scores, or a score and a cut-off, are
that close, and a barely trained model has thousands of such near-ties (its scores are spread a
few 1e-7 apart). A verification that compares the two detection lists as they are cries wolf.

:func:`image_candidates` lists every candidate of an image (from the reference's raw outputs) with
what is needed to judge it; :func:`explain_differences` then goes through the candidates that one
output has and the other lacks, best first, and accepts a difference only when it is caused by a
near-tie:

1. its score is within ``eps`` of the score threshold;
2. its score is within ``2 * eps`` of its class's top-k cut (the k-th or (k+1)-th best score);
3. NMS: a candidate of its class that scores as well or nearly as well overlaps it at more than
   ``nms_iou - iou_eps``, and that candidate ties with it (scores within ``2 * eps``: NMS may
   visit either first), overlaps it at nearly ``nms_iou``, or is itself a difference (present in
   one output only, so it suppresses this one in one output only);
4. the per-image cap: the output lacking it is full and its last score is at least this one's
   minus ``2 * eps`` (a difference above pushed it out, or it ties with the cut).

Everything else that differs is a fault of the export: a determined detection missing, or one the
reference surely drops (suppressed, or below a clear cut) kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssdcli.boxes import BoxCoder
from ssdcli.postprocess import PostprocessSettings


@dataclass
class Candidates:
    """The candidates of one image: every (prior, class) above ``threshold - eps`` and within or
    near its class's top-k, by class, then decreasing score.

    Attributes:
        boxes_N4 (ndarray[N, 4], float32): xyxy, pixels of the original image, clamped to it.
        unit_boxes_N4 (ndarray[N, 4], float32): the same, normalised to [0, 1] (NMS's frame).
        scores_N (ndarray[N], float32): class probabilities.
        labels_N (ndarray[N], int64): foreground class 0..C-1.
        near_cut_N (ndarray[N], bool): within the tolerance of the threshold or of the class's
            top-k cut (rules 1 and 2 of the module doc).
    """

    boxes_N4: np.ndarray
    unit_boxes_N4: np.ndarray
    scores_N: np.ndarray
    labels_N: np.ndarray
    near_cut_N: np.ndarray


def image_candidates(
    cls_logits_PK: torch.Tensor,
    box_deltas_P4: torch.Tensor,
    priors_P4: torch.Tensor,
    coder: BoxCoder,
    cutoffs: PostprocessSettings,
    size_hw: tuple[int, int],
    eps: float,
    frame_hw: tuple[float, float] | None = None,
) -> Candidates:
    """The candidates of one image (see :class:`Candidates`).

    Args:
        cls_logits_PK (Tensor[P, K], float32): class logits, 0 = background.
        box_deltas_P4 (Tensor[P, 4], float32): box deltas.
        priors_P4 (Tensor[P, 4], float32): normalised cxcywh priors.
        coder: the box coder (variances).
        cutoffs: threshold, NMS IoU and the two top-k limits.
        size_hw: ``(H, W)`` of the original image (``boxes_N4`` are clamped to it).
        eps: how far a score may be off.
        frame_hw: ``(H, W)`` in original pixels that the network input spans
            (:func:`ssdcli.boxes.frame_hw`; larger than ``size_hw`` for letterbox); default
            ``size_hw``.
    """
    probs_PC = cls_logits_PK.float().softmax(dim=-1)[:, 1:].numpy()
    unit_P4 = coder.decode(box_deltas_P4.float(), priors_P4.float()).clamp(0.0, 1.0).numpy()
    index_parts, label_parts, near_parts = [], [], []
    k = int(cutoffs.pre_nms_top_k)
    for c in range(probs_PC.shape[1]):
        scores_P = probs_PC[:, c]
        index = np.flatnonzero(scores_P > cutoffs.score_threshold - eps)
        index = index[np.lexsort((index, -scores_P[index]))]  # decreasing score, then prior
        score = scores_P[index]
        near = np.abs(score - cutoffs.score_threshold) <= eps
        if len(index) > k:
            # The k-th and (k+1)-th scores bound the cut; a score within 2 eps of the other side
            # may cross it. Beyond it and clear of it: never reaches NMS, never output.
            rank = np.arange(len(index))
            inside_k, beyond_k = score[k - 1], score[k]
            at_cut = ((rank < k) & (score <= beyond_k + 2 * eps)) | (
                (rank >= k) & (score >= inside_k - 2 * eps)
            )
            keep = (rank < k) | at_cut
            index, near = index[keep], (near | at_cut)[keep]
        index_parts.append(index)
        label_parts.append(np.full(len(index), c, np.int64))
        near_parts.append(near)
    index_N = np.concatenate(index_parts).astype(np.int64)
    labels_N = np.concatenate(label_parts).astype(np.int64)
    unit_N4 = unit_P4[index_N].reshape(-1, 4)
    height, width = size_hw
    frame_h, frame_w = frame_hw or size_hw
    scale = np.array([frame_w, frame_h, frame_w, frame_h], dtype=np.float32)
    limit = np.array([width, height, width, height], dtype=np.float32)
    pixels_N4 = np.minimum(np.maximum(unit_N4 * scale, 0.0), limit).astype(np.float32)
    return Candidates(
        pixels_N4,
        unit_N4,
        probs_PC[index_N, labels_N].astype(np.float32),
        labels_N,
        np.concatenate(near_parts).astype(bool),
    )


def explain_differences(
    candidates: Candidates,
    differs_N: np.ndarray,
    lacking_floor_N: np.ndarray,
    cutoffs: PostprocessSettings,
    eps: float,
    iou_eps: float,
) -> np.ndarray:
    """Which differing candidates are near-ties (rules 1-4 of the module doc).

    Args:
        candidates: the image's candidates.
        differs_N (ndarray[N], bool): in one output only.
        lacking_floor_N (ndarray[N], float32): for a differing candidate, the last score of the
            output that lacks it when that output holds ``max_detections`` detections, else
            ``-inf``.
        cutoffs, eps: as :func:`image_candidates`; iou_eps: overlaps this close to ``nms_iou``
            may be decided either way.

    Returns:
        ndarray[N], bool: True for differences caused by a near-tie.
    """
    explained_N = np.zeros(len(differs_N), dtype=bool)
    scores, labels = candidates.scores_N, candidates.labels_N
    for i in np.flatnonzero(differs_N)[np.argsort(-scores[differs_N], kind="stable")]:
        if candidates.near_cut_N[i] or lacking_floor_N[i] >= scores[i] - 2 * eps:
            explained_N[i] = True  # rules 1, 2 and 4
            continue
        rivals = np.flatnonzero(
            (labels == labels[i]) & (scores >= scores[i] - 2 * eps) & (np.arange(len(scores)) != i)
        )
        if rivals.size == 0:
            continue
        iou = _iou(candidates.unit_boxes_N4[i], candidates.unit_boxes_N4[rivals])
        overlapping = iou > cutoffs.nms_iou - iou_eps
        tied = np.abs(scores[rivals] - scores[i]) <= 2 * eps
        borderline = np.abs(iou - cutoffs.nms_iou) <= iou_eps
        explained_N[i] = bool((overlapping & (tied | borderline | differs_N[rivals])).any())
    return explained_N


def _iou(box_4: np.ndarray, boxes_M4: np.ndarray) -> np.ndarray:
    """IoU of one normalised xyxy box with M others (float64: ``iou_eps`` covers the float32
    arithmetic of the implementations)."""
    a = box_4.astype(np.float64)
    b = boxes_M4.astype(np.float64)
    lt = np.maximum(a[:2], b[:, :2])
    rb = np.minimum(a[2:], b[:, 2:])
    inter = (rb - lt).clip(0).prod(axis=1)
    union = (a[2:] - a[:2]).clip(0).prod() + (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
