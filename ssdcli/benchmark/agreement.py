"""Do two implementations of one model give the same detections? A plain pairing of two detection
lists, for the rows of ``ssd benchmark`` that are not exported files (torchvision's model with the
checkpoint's weights), where no head outputs or tie replay are available.

Exported files are checked more strictly, tie-aware, by :mod:`ssdcli.export.verify`; both pair
detections with the same :func:`~ssdcli.export.verify.matching.greedy_match`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.export.verify.matching import detection_arrays, greedy_match
from ssdcli.export.verify.tolerance import FLOAT32, Tolerance

if TYPE_CHECKING:
    from ssdcli.postprocess import Detections


@dataclass
class MatchReport:
    """A plain matching of two detection lists (:func:`compare_detections`).

    Attributes:
        images: images compared.
        detections: reference detections (all images).
        unmatched: detections of either side without a counterpart.
        max_box_diff_px: largest box-coordinate difference, pixels of the original image.
        max_box_diff: the same as a fraction of the image's longer side.
        max_score_diff: largest score difference.
        passed: within tolerance.
    """

    images: int
    detections: int
    unmatched: int
    max_box_diff_px: float
    max_box_diff: float
    max_score_diff: float
    passed: bool = True

    def summary(self) -> str:
        return (
            f"{self.images} images, {self.detections} detections: max diff boxes "
            f"{self.max_box_diff_px:.2e} px ({self.max_box_diff:.1e} of the side), scores "
            f"{self.max_score_diff:.2e}; {self.unmatched} unmatched"
        )


def compare_detections(
    reference: Sequence[Detections],
    candidate: Sequence[Detections],
    sizes_hw: Sequence[tuple[int, int]],
    tolerance: Tolerance = FLOAT32,
) -> MatchReport:
    """Match detections image by image and measure their differences.

    Each candidate detection (best first) is paired with the unpaired reference detection of the
    same label whose box and score are closest (:func:`~ssdcli.export.verify.matching.greedy_match`)
    when both differences are within ``tolerance``; the others count as unmatched (a different
    NMS or threshold decision on a borderline box, or a wrong export). The largest differences
    are measured over the pairs.

    Args:
        reference, candidate: one ``Detections`` per image (boxes xyxy pixels).
        sizes_hw: ``(H, W)`` of each image.
        tolerance: pairing limits and the accepted share of unmatched detections.

    Returns:
        A :class:`MatchReport` with ``passed`` set.
    """
    max_px = max_frac = max_score = 0.0
    unmatched = total = 0
    for ref, cand, (height, width) in zip(reference, candidate, sizes_hw, strict=True):
        side = float(max(height, width))
        ref_arrays = detection_arrays(ref)
        matching = greedy_match(ref_arrays, detection_arrays(cand), side, tolerance)
        total += len(ref_arrays.scores_D)
        unmatched += int(matching.unpaired_D.sum()) + int((~matching.paired_N).sum())
        if matching.box_diffs.size:
            max_frac = max(max_frac, float(matching.box_diffs.max()))
            max_px = max(max_px, float(matching.box_diffs.max() * side))
            max_score = max(max_score, float(matching.score_diffs.max()))
    allowed = max(1, int(np.ceil(tolerance.unmatched_fraction * max(total, 1))))
    passed = max_frac <= tolerance.box and max_score <= tolerance.score and unmatched <= allowed
    return MatchReport(len(sizes_hw), total, unmatched, max_px, max_frac, max_score, passed)
