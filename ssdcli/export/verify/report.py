"""What a verification found: :class:`VerifyReport`, filled by
:func:`~ssdcli.export.verify.check.verify_export`, read by ``ssd export`` and ``ssd benchmark``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VerifyReport:
    """How closely an export reproduces the eager model (see :mod:`ssdcli.export.verify`).

    Attributes:
        images: sample images.
        input_diff: largest difference of the preprocessed inputs.
        raw_diffs: per head output (``cls_logits``, ``box_deltas``; ``priors`` for raw exports),
            the largest absolute difference.
        raw_rel: the largest of them relative to its output's magnitude (at least 1).
        detections: detections in both outputs, compared (all images).
        set_aside: detections in one output only whose presence a near-tie decides (see
            :mod:`ssdcli.export.verify.determined`), not compared.
        missing: detections of the checkpoint the file lacks, not explained by a tie.
        extra: detections of the file the checkpoint lacks, not explained by a tie: ``box_off``
            of them have a candidate of the same class and score whose box differs, ``dropped``
            are candidates the checkpoint's NMS or top-k removes.
        box_off, dropped: see ``extra``; box_off_px: the largest such box difference (pixels).
        max_box_diff_px, max_box_diff, max_score_diff: over the matched detections (pixels,
            fraction of the longer side, score).
        tie_eps: the score tolerance used for near-ties.
        reference_unexplained: detections of the checkpoint's own output that contradict the
            replay (0 unless the replay is wrong; for tests).
        problems: one phrase per failed check; passed: no problem.
    """

    images: int
    input_diff: float = 0.0
    raw_diffs: dict[str, float] = field(default_factory=dict)
    raw_rel: float = 0.0
    detections: int = 0
    set_aside: int = 0
    missing: int = 0
    extra: int = 0
    box_off: int = 0
    dropped: int = 0
    box_off_px: float = 0.0
    max_box_diff_px: float = 0.0
    max_box_diff: float = 0.0
    max_score_diff: float = 0.0
    tie_eps: float = 0.0
    reference_unexplained: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """What was compared and how many were set aside, in one line."""
        raw = ", ".join(f"{name} {diff:.2e}" for name, diff in self.raw_diffs.items())
        return (
            f"{self.images} images: head outputs max diff {raw} ({self.raw_rel:.1e} of their "
            f"magnitude); {self.detections} detections in both: max diff boxes "
            f"{self.max_box_diff_px:.2e} px, scores {self.max_score_diff:.2e}; "
            f"{self.set_aside} in one only set aside as near-ties (scores within "
            f"{self.tie_eps:.0e} of a cut-off or of an overlapping candidate)"
        )
