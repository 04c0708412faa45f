"""Pairing two lists of detections of one image: the one greedy matching every comparison uses.

The export verification pairs each output's detections with the reference's candidates
(:mod:`ssdcli.export.verify.check`); ``ssd benchmark`` pairs another implementation's detections
with the checkpoint's (:mod:`ssdcli.benchmark.agreement`). Both go through :func:`greedy_match`,
on arrays made by :func:`detection_arrays`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ssdcli.export.verify.tolerance import Tolerance
    from ssdcli.postprocess import Detections


class DetectionArrays(NamedTuple):
    """One image's detections (or candidates) as NumPy arrays.

    Attributes:
        boxes_D4 (ndarray[D, 4], float32): xyxy, pixels of the original image.
        scores_D (ndarray[D], float32): scores.
        labels_D (ndarray[D], int64): foreground class 0..C-1.
    """

    boxes_D4: np.ndarray
    scores_D: np.ndarray
    labels_D: np.ndarray


def detection_arrays(detections: Detections) -> DetectionArrays:
    """``Detections`` (tensors, on any device) as :class:`DetectionArrays` on the CPU."""
    boxes, scores, labels = (
        np.asarray(t.detach().cpu())
        for t in (detections.boxes_D4, detections.scores_D, detections.labels_D)
    )
    return DetectionArrays(boxes, scores, labels)


@dataclass(frozen=True)
class Matching:
    """The result of :func:`greedy_match`.

    Attributes:
        paired_N (ndarray[N], bool): reference entries that got a partner.
        unpaired_D (ndarray[D], bool): detections that found none.
        box_diffs, score_diffs (ndarray[pairs]): per pair, the largest box-coordinate difference
            as a fraction of the image's longer side, and the score difference.
    """

    paired_N: np.ndarray
    unpaired_D: np.ndarray
    box_diffs: np.ndarray
    score_diffs: np.ndarray


def greedy_match(
    reference: DetectionArrays,
    detections: DetectionArrays,
    side: float,
    tolerance: Tolerance,
) -> Matching:
    """Pair each detection (best first) with the closest unpaired reference entry of its class.

    Closeness is the largest box-coordinate difference as a fraction of ``side`` plus the score
    difference; a pair needs both differences within ``tolerance.box`` and ``tolerance.score``
    (a NaN difference never pairs). Ties of closeness go to the earlier reference entry.

    Args:
        reference: N entries (detections or candidates), boxes xyxy pixels.
        detections: D detections of the same image, boxes xyxy pixels.
        side: the image's longer side in pixels.
        tolerance: the pairing limits (``box``, ``score``).
    """
    ref_boxes, ref_scores, ref_labels = reference
    boxes, scores, labels = detections
    used = np.zeros(len(ref_scores), dtype=bool)
    unpaired = np.zeros(len(scores), dtype=bool)
    box_diffs, score_diffs = [], []
    for j in np.argsort(-scores, kind="stable"):
        box_diff = np.abs(ref_boxes - boxes[j]).max(axis=1) / side
        score_diff = np.abs(ref_scores - scores[j])
        ok = (
            (ref_labels == labels[j])
            & ~used
            & (box_diff <= tolerance.box)
            & (score_diff <= tolerance.score)
        )
        if not ok.any():
            unpaired[j] = True
            continue
        i = int(np.argmin(np.where(ok, box_diff + score_diff, np.inf)))
        used[i] = True
        box_diffs.append(box_diff[i])
        score_diffs.append(score_diff[i])
    return Matching(used, unpaired, np.asarray(box_diffs), np.asarray(score_diffs))
