"""Naming the likely cause of a failed verification, in the phrases ``ssd export`` prints.

The checks (:mod:`ssdcli.export.verify.check`) measure *that* an export differs; these functions
say *where*: the metadata field that makes the inputs differ (mean, std, channel order, size),
box decoding (priors or variances) when a detection has a checkpoint candidate's class and score
but another box, NMS or top-k when it is one the checkpoint surely removes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ssdcli.export.verify.matching import DetectionArrays

if TYPE_CHECKING:
    from ssdcli.export.verify.determined import Candidates
    from ssdcli.export.verify.report import VerifyReport
    from ssdcli.export.verify.tolerance import Tolerance
    from ssdcli.infer.model_info import ModelInfo

PREPROCESSING_FIELDS = ("mean", "std", "channel_order", "size_hw")
"""The fields of a file's metadata that decide its inputs."""


def input_problem(input_diff: float, reference: ModelInfo, exported: ModelInfo) -> str:
    """The phrase for inputs that differ by ``input_diff``, naming the metadata fields of the
    file that differ from the checkpoint's."""
    fields = [
        f"{name} {_fmt(getattr(exported, name))} instead of {_fmt(getattr(reference, name))}"
        for name in PREPROCESSING_FIELDS
        if _fmt(getattr(exported, name)) != _fmt(getattr(reference, name))
    ]
    return f"input preprocessing differs by up to {input_diff:.3g}" + (
        f" (the file's metadata says {'; '.join(fields)})" if fields else ""
    )


def _fmt(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(f"{float(v):g}" for v in value) + "]"
    return str(value)


def box_off(
    candidates: Candidates,
    detections: DetectionArrays,
    unpaired_D: np.ndarray,
    tolerance: Tolerance,
) -> tuple[int, float]:
    """Unpaired detections that have a candidate of the same class and score: their boxes are
    decoded differently (priors or variances).

    Args:
        candidates: the checkpoint's candidates of the image (boxes xyxy pixels).
        detections: the file's detections of the image (boxes xyxy pixels).
        unpaired_D (ndarray[D], bool): the detections no candidate was paired with.
        tolerance: ``score`` decides "the same score".

    Returns:
        Their count and their largest box difference (pixels).
    """
    count, worst = 0, 0.0
    boxes, scores, labels = detections
    for j in np.flatnonzero(unpaired_D):
        same = (candidates.labels_N == labels[j]) & (
            np.abs(candidates.scores_N - scores[j]) <= tolerance.score
        )
        if same.any():
            count += 1
            diff = np.abs(candidates.boxes_N4[same] - boxes[j]).max(axis=1).min()
            worst = max(worst, float(diff))
    return count, worst


def detection_problem(report: VerifyReport) -> str | None:
    """One phrase for the detection checks, naming the likely cause; None when they passed."""
    if not (report.missing or report.extra):
        return None
    parts = []
    if report.missing:
        parts.append(f"{report.missing} determined detections of the checkpoint are missing")
    if report.extra:
        causes = []
        if report.box_off:
            causes.append(
                f"{report.box_off} with the class and score of a checkpoint candidate but a box "
                f"off by up to {report.box_off_px:.3g} px: box decoding (priors or variances) "
                "differs"
            )
        if report.dropped:
            causes.append(
                f"{report.dropped} that the checkpoint's NMS or top-k removes, not near a tie: "
                "NMS differs"
            )
        other = report.extra - report.box_off - report.dropped
        if other:
            causes.append(f"{other} matching no checkpoint candidate")
        parts.append(f"{report.extra} detections are extra ({'; '.join(causes)})")
    return "post-processing differs: " + ", ".join(parts)
