"""How far an exported file may differ from the eager model: :class:`Tolerance` and its two
presets, float32 (:data:`FLOAT32`) and float16 (:data:`FLOAT16`, also used for int8 and for
other implementations of the same network)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted differences.

    Attributes:
        box: box coordinates, as a fraction of the image's longer side.
        score: detection scores.
        raw: head outputs, as a fraction of their largest magnitude (at least 1).
        unmatched_fraction: share of unmatched detections a plain comparison of two detection
            lists accepts (``ssdcli.benchmark.agreement.compare_detections``).
        tie_score: least score tolerance for near-ties (the one used grows with the measured
            score difference of the head outputs, up to ``score``).
        tie_iou: overlaps this close to the NMS IoU are undecided.
        inputs: preprocessed input values (normalised units).
    """

    box: float
    score: float
    raw: float
    unmatched_fraction: float
    tie_score: float = 1e-6
    tie_iou: float = 1e-4
    inputs: float = 1e-4


FLOAT32 = Tolerance(box=1e-3, score=1e-3, raw=1e-3, unmatched_fraction=0.01)
FLOAT16 = Tolerance(
    box=2e-2, score=3e-2, raw=5e-2, unmatched_fraction=0.08, tie_score=1e-4, tie_iou=1e-2
)
