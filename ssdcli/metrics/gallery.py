"""Which images and detections a report shows: the worst images and the most confident false
positives at an :class:`~ssdcli.metrics.analysis.ErrorAnalysis`'s threshold (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdcli.metrics.analysis import BACKGROUND, CONFUSION, ErrorAnalysis
from ssdcli.metrics.voc import ImageDetections


def worst_images(analysis: ErrorAnalysis, count: int) -> list[int]:
    """Indices of the ``count`` images with the most errors (ties: earlier image first); images
    without errors are never chosen."""
    order = np.argsort(-analysis.errors, kind="stable")
    return [int(i) for i in order[:count] if analysis.errors[i] > 0]


@dataclass(frozen=True)
class FalsePositive:
    """One false detection: image index, detection index in it, its score, class and kind code."""

    image: int
    detection: int
    score: float
    label: int
    kind: int


def confident_false_positives(
    analysis: ErrorAnalysis, detections: Sequence[ImageDetections], count: int
) -> list[FalsePositive]:
    """The ``count`` highest-scored false positives at the threshold (ties: image order)."""
    found = []
    for i, (match, det) in enumerate(zip(analysis.matches, detections, strict=True)):
        for d in np.flatnonzero((match.det_kind >= CONFUSION) & (match.det_kind <= BACKGROUND)):
            kind = int(match.det_kind[d])
            found.append(
                FalsePositive(i, int(d), float(det.scores_D[d]), int(det.labels_D[d]), kind)
            )
    found.sort(key=lambda fp: -fp.score)  # stable: ties keep image order
    return found[:count]
