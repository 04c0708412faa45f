"""Checking an exported file against the eager model, in two separate questions.

1. Does the exported *network* compute what the checkpoint computes? The file's inputs
   (preprocessed as its metadata describes: size, mean/std, channel order) are compared with the
   checkpoint's, then its head outputs (:mod:`ssdcli.export.heads`) with the eager model's, within
   a tolerance relative to their magnitude. Wrong normalisation, swapped channels or a broken
   network fail here.
2. Does the exported *post-processing* give the checkpoint's detections where the result is
   determined? Scores that nearly tie with each other or with a cut-off (threshold, per-class
   top-k, per-image top-k) make decisions that float32 rounding can flip, and a barely trained
   model has thousands of them. :mod:`ssdcli.export.determined` replays the decisions on the
   eager outputs and sets those candidates aside; every determined detection must be in the
   file's output, and the file must output nothing the checkpoint surely drops. Wrong priors,
   variances, NMS IoU or a broken NMS fail here.

:func:`sample_images` picks the images (a manifest's, else generated ones of several sizes);
:func:`compare_detections` is a plain matching of two detection lists (used by tests and
benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.errors import ExportError
from ssdcli.export.determined import Candidates, explain_differences, image_candidates

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.infer.base import BasePredictor
    from ssdcli.postprocess import Detections, PostprocessSettings

SAMPLE_SIZES_HW = ((480, 640), (300, 300), (640, 427), (256, 512))


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted differences.

    Attributes:
        box: box coordinates, as a fraction of the image's longer side.
        score: detection scores.
        raw: head outputs, as a fraction of their largest magnitude (at least 1).
        unmatched_fraction: share of unmatched detections :func:`compare_detections` accepts.
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


@dataclass
class VerifyReport:
    """How closely an export reproduces the eager model (see the module doc).

    Attributes:
        images: sample images.
        input_diff: largest difference of the preprocessed inputs.
        raw_diffs: per head output (``cls_logits``, ``box_deltas``; ``priors`` for raw exports),
            the largest absolute difference.
        raw_rel: the largest of them relative to its output's magnitude (at least 1).
        detections: detections in both outputs, compared (all images).
        set_aside: detections in one output only whose presence a near-tie decides (see
            :mod:`ssdcli.export.determined`), not compared.
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


def synthetic_images(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Deterministic RGB uint8 test pictures (gradients, rectangles and discs) of several sizes."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        height, width = SAMPLE_SIZES_HW[i % len(SAMPLE_SIZES_HW)]
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        base = rng.uniform(0, 255, size=(1, 1, 3)).astype(np.float32)
        image = (base * (0.5 + 0.5 * y) + 60 * x).clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(2, 6))):
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            x1, y1 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            x2 = min(width - 1, x1 + int(rng.integers(30, width // 2)))
            y2 = min(height - 1, y1 + int(rng.integers(30, height // 2)))
            if rng.random() < 0.5:
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness=-1)
            else:
                radius = max(8, min(x2 - x1, y2 - y1) // 2)
                cv2.circle(image, ((x1 + x2) // 2, (y1 + y2) // 2), radius, colour, -1)
        images.append(image)
    return images


def sample_images(manifest_path: str | Path | None, count: int = 4) -> list[np.ndarray]:
    """Up to ``count`` images of a manifest (validation split first), else synthetic ones."""
    if manifest_path is not None and Path(manifest_path).is_file():
        try:
            from ssdcli.data.images import read_image_rgb
            from ssdcli.data.records import Manifest

            manifest = Manifest.load(manifest_path)
            order = [i for ids in _split_order(manifest) for i in ids]
            images = [read_image_rgb(manifest.records[i].image_path) for i in order[:count]]
            if images:
                return images
        except Exception:  # any problem with the data: fall back to generated pictures
            pass
    return synthetic_images(count)


def _split_order(manifest) -> list[list[int]]:
    splits = getattr(manifest, "splits", {}) or {}
    preferred = [name for name in ("val", "test", "train") if name in splits]
    lists = [list(splits[name]) for name in preferred] or [list(range(len(manifest.records)))]
    return lists


def compare_detections(
    reference: Sequence,
    candidate: Sequence,
    sizes_hw: Sequence[tuple[int, int]],
    tolerance: Tolerance = FLOAT32,
) -> MatchReport:
    """Match detections image by image and measure their differences.

    Each candidate detection (best first) is paired with the unpaired reference detection of the
    same label whose box and score are closest (largest coordinate difference as a fraction of the
    image side, plus the score difference) when both differences are within ``tolerance``; the
    others count as unmatched (a different NMS or threshold decision on a borderline box, or a
    wrong export). The largest differences are measured over the pairs.

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
        rb, rs, rl = (
            np.asarray(t.detach().cpu()) for t in (ref.boxes_D4, ref.scores_D, ref.labels_D)
        )
        cb, cs, cl = (
            np.asarray(t.detach().cpu()) for t in (cand.boxes_D4, cand.scores_D, cand.labels_D)
        )
        total += len(rs)
        used = np.zeros(len(rs), dtype=bool)
        for j in range(len(cs)):
            box_diff = np.abs(rb - cb[j]).max(axis=1) / side if len(rs) else np.zeros(0)
            score_diff = np.abs(rs - cs[j])
            cost = box_diff + score_diff
            far = (box_diff > tolerance.box) | (score_diff > tolerance.score)
            cost[(rl != cl[j]) | used | far] = np.inf
            i = int(np.argmin(cost)) if len(cost) else -1
            if i < 0 or not np.isfinite(cost[i]):
                unmatched += 1
                continue
            used[i] = True
            max_frac = max(max_frac, float(box_diff[i]))
            max_px = max(max_px, float(box_diff[i] * side))
            max_score = max(max_score, float(abs(rs[i] - cs[j])))
        unmatched += int((~used).sum())
    allowed = max(1, int(np.ceil(tolerance.unmatched_fraction * max(total, 1))))
    passed = max_frac <= tolerance.box and max_score <= tolerance.score and unmatched <= allowed
    return MatchReport(len(sizes_hw), total, unmatched, max_px, max_frac, max_score, passed)


def verify_export(
    loaded: LoadedDetector,
    path: Path,
    images: list[np.ndarray],
    dynamic_batch: bool,
    tolerance: Tolerance = FLOAT32,
) -> VerifyReport:
    """Run the exported file and the eager model on ``images`` and compare (see module doc).

    Args:
        loaded: the checkpoint.
        path: the exported file (ONNX, TorchScript, OpenVINO or LiteRT; either form).
        images: RGB uint8 ``[h, w, 3]`` pictures of any sizes.
        dynamic_batch: the file takes any batch size (else batch 1).
        tolerance: the accepted differences.

    Returns:
        The report; ``problems`` says what differs.

    Raises:
        ExportError: the file cannot be loaded or does not run.
    """
    import torch

    from ssdcli.boxes import BoxCoder, frame_hw
    from ssdcli.export.heads import exported_head_outputs
    from ssdcli.infer.eager import Predictor
    from ssdcli.infer.open import model_format, open_predictor

    # The reference is the float32 network, the precision an export is written in.
    eager = Predictor(
        loaded.detector,
        loaded.recipe,
        "cpu",
        class_names=loaded.class_names,
        precision="float32",
    )
    batch = len(images) if dynamic_batch else 1
    eager.batch_size = batch
    sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
    report = VerifyReport(len(images))
    try:
        exported = open_predictor(path, "cpu", batch_size=batch)
        candidate = exported.predict(images)
        ref_inputs, got_inputs = eager.preprocess(images), exported.preprocess(images)
        got_cls, got_box = exported_head_outputs(
            path, model_format(path), got_inputs, exported.info.fixed_batch
        )
        got_priors = _priors_output(exported, got_inputs) if exported.info.form == "raw" else None
    except ExportError:
        raise
    except Exception as error:  # a runtime failure is a failed verification
        raise ExportError(
            f"the exported file does not run: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from error
    ref_cls, ref_box = _eager_heads(eager, ref_inputs, batch)
    _check_inputs(report, eager, exported, ref_inputs, got_inputs, tolerance)
    outputs = {"cls_logits": (ref_cls, got_cls), "box_deltas": (ref_box, got_box)}
    if got_priors is not None:
        outputs["priors"] = (loaded.detector.priors_P4.cpu().float().numpy(), got_priors)
    _check_heads(report, outputs, tolerance)
    if ref_cls.shape != got_cls.shape:
        return report  # another network altogether: nothing to compare detection by detection

    # Near-ties: each score may be off by the measured softmax difference (at least the floor
    # of float32 rounding), never more than the score tolerance itself.
    ref_probs = torch.from_numpy(ref_cls).softmax(-1)
    got_probs = torch.from_numpy(got_cls).softmax(-1)
    measured = float((ref_probs - got_probs).abs().max()) if ref_cls.size else 0.0
    report.tie_eps = min(max(tolerance.tie_score, 4 * measured), tolerance.score)
    cutoffs = eager.settings
    coder = BoxCoder(eager.info.variances, eager.info.max_log_scale)
    priors = loaded.detector.priors_P4.cpu().float()
    reference = eager.postprocessor(torch.from_numpy(ref_cls), torch.from_numpy(ref_box), sizes)
    for b, size_hw in enumerate(sizes):
        candidates = image_candidates(
            torch.from_numpy(ref_cls[b]),
            torch.from_numpy(ref_box[b]),
            priors,
            coder,
            cutoffs,
            size_hw,
            report.tie_eps,
            frame_hw(size_hw, eager.info.size_hw, eager.info.resize),
        )
        _compare_image(report, candidates, reference[b], candidate[b], cutoffs, size_hw, tolerance)
    _detection_problems(report)
    return report


def _eager_heads(
    eager: BasePredictor, inputs_BCHW: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The eager model's head outputs, in the same chunks as its predictions."""
    cls_parts, box_parts = [], []
    for start in range(0, len(inputs_BCHW), batch):
        cls_logits, box_deltas = eager.raw_outputs(inputs_BCHW[start : start + batch])
        cls_parts.append(cls_logits.cpu().numpy())
        box_parts.append(box_deltas.cpu().numpy())
    return np.concatenate(cls_parts), np.concatenate(box_parts)


def _priors_output(exported: BasePredictor, inputs_BCHW: np.ndarray) -> np.ndarray:
    """The ``priors`` output of a raw export (``[P, 4]`` normalised cxcywh)."""
    fixed = exported.info.fixed_batch or 1
    first = inputs_BCHW[:fixed]
    if len(first) < fixed:
        first = np.concatenate(
            [first, np.zeros((fixed - len(first), *first.shape[1:]), first.dtype)]
        )
    return np.asarray(exported.file_outputs(first)[2], np.float32)


def _check_inputs(
    report: VerifyReport,
    eager: BasePredictor,
    exported: BasePredictor,
    ref_BCHW: np.ndarray,
    got_BCHW: np.ndarray,
    tolerance: Tolerance,
) -> None:
    """Compare the preprocessed inputs and name the metadata field that makes them differ."""
    if ref_BCHW.shape != got_BCHW.shape:
        report.problems.append(
            f"input size: the file takes {got_BCHW.shape[2:]}, the checkpoint {ref_BCHW.shape[2:]}"
        )
        report.input_diff = float("inf")
        return
    report.input_diff = float(np.abs(ref_BCHW - got_BCHW).max()) if ref_BCHW.size else 0.0
    if report.input_diff <= tolerance.inputs:
        return
    ref, got = eager.info, exported.info
    fields = [
        f"{name} {_fmt(getattr(got, name))} instead of {_fmt(getattr(ref, name))}"
        for name in ("mean", "std", "channel_order", "size_hw")
        if _fmt(getattr(got, name)) != _fmt(getattr(ref, name))
    ]
    report.problems.append(
        f"input preprocessing differs by up to {report.input_diff:.3g}"
        + (f" (the file's metadata says {'; '.join(fields)})" if fields else "")
    )


def _fmt(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(f"{float(v):g}" for v in value) + "]"
    return str(value)


def _check_heads(
    report: VerifyReport,
    outputs: dict[str, tuple[np.ndarray, np.ndarray]],
    tolerance: Tolerance,
) -> None:
    """Largest difference of each head output, relative to the output's magnitude."""
    worst = []
    for name, (ref, got) in outputs.items():
        if ref.shape != got.shape:
            report.problems.append(f"head output {name} has shape {got.shape}, not {ref.shape}")
            continue
        diff = float(np.abs(ref - got).max()) if ref.size else 0.0
        scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
        report.raw_diffs[name] = diff
        report.raw_rel = max(report.raw_rel, diff / scale)
        if not diff / scale <= tolerance.raw:  # NaN fails too
            worst.append(f"{name} by up to {diff:.3g} ({diff / scale:.1e} of their magnitude)")
    if worst:
        report.problems.append(
            f"head outputs differ beyond {tolerance.raw:.0e} of their magnitude: "
            + ", ".join(worst)
        )


def _compare_image(
    report: VerifyReport,
    candidates: Candidates,
    reference: Detections,
    exported: Detections,
    cutoffs: PostprocessSettings,
    size_hw: tuple[int, int],
    tolerance: Tolerance,
) -> None:
    """Add one image's comparison to ``report`` (see :class:`VerifyReport`).

    Both outputs are matched to the candidates; a candidate in both is compared, one in a single
    output must be a near-tie (:func:`~ssdcli.export.determined.explain_differences`).
    """
    side = float(max(size_hw))
    in_ref, _, _, ref_unmatched = _match(candidates, reference, side, tolerance)
    in_exp, box_diff, score_diff, exp_unmatched = _match(candidates, exported, side, tolerance)
    report.reference_unexplained += int(ref_unmatched.sum())
    differs = in_ref ^ in_exp
    floor = np.full(len(differs), -np.inf, dtype=np.float32)
    for has, lacking in ((in_ref, exported), (in_exp, reference)):
        if len(lacking) >= cutoffs.max_detections and len(lacking):
            floor[has & differs] = float(lacking.scores_D.min())
    explained = explain_differences(
        candidates, differs, floor, cutoffs, report.tie_eps, tolerance.tie_iou
    )
    report.detections += int((in_ref & in_exp).sum())
    report.set_aside += int(explained.sum())
    report.missing += int((in_ref & ~in_exp & ~explained).sum())
    report.dropped += int((in_exp & ~in_ref & ~explained).sum())
    box_off, box_off_px = _box_off(candidates, exported, exp_unmatched, side, tolerance)
    report.box_off += box_off
    report.box_off_px = max(report.box_off_px, box_off_px)
    report.extra += int((in_exp & ~in_ref & ~explained).sum() + exp_unmatched.sum())
    if box_diff.size:
        report.max_box_diff = max(report.max_box_diff, float(box_diff.max()))
        report.max_box_diff_px = max(report.max_box_diff_px, float(box_diff.max()) * side)
        report.max_score_diff = max(report.max_score_diff, float(score_diff.max()))


def _match(
    candidates: Candidates, detections: Detections, side: float, tolerance: Tolerance
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair each detection (best first) with the closest unused candidate of its class within
    the box and score tolerance.

    Returns:
        ``matched_N`` (bool, per candidate), the box differences (fraction of ``side``) and score
        differences of the pairs, and ``unmatched_D`` (bool, per detection).
    """
    boxes, scores, labels = (
        np.asarray(t.detach().cpu())
        for t in (detections.boxes_D4, detections.scores_D, detections.labels_D)
    )
    used = np.zeros(len(candidates.scores_N), dtype=bool)
    unmatched = np.zeros(len(scores), dtype=bool)
    box_diffs, score_diffs = [], []
    for j in np.argsort(-scores, kind="stable"):
        box_diff = np.abs(candidates.boxes_N4 - boxes[j]).max(axis=1) / side
        score_diff = np.abs(candidates.scores_N - scores[j])
        ok = (
            (candidates.labels_N == labels[j])
            & ~used
            & (box_diff <= tolerance.box)
            & (score_diff <= tolerance.score)
        )
        if not ok.any():
            unmatched[j] = True
            continue
        cost = np.where(ok, box_diff + score_diff, np.inf)
        i = int(np.argmin(cost))
        used[i] = True
        box_diffs.append(box_diff[i])
        score_diffs.append(score_diff[i])
    return used, np.asarray(box_diffs), np.asarray(score_diffs), unmatched


def _box_off(
    candidates: Candidates,
    detections: Detections,
    unmatched_D: np.ndarray,
    side: float,
    tolerance: Tolerance,
) -> tuple[int, float]:
    """Unmatched detections that have a candidate of the same class and score: their boxes are
    decoded differently (priors or variances). Returns their count and largest box difference
    (pixels)."""
    count, worst = 0, 0.0
    boxes, scores, labels = (
        np.asarray(t.detach().cpu())
        for t in (detections.boxes_D4, detections.scores_D, detections.labels_D)
    )
    for j in np.flatnonzero(unmatched_D):
        same = (candidates.labels_N == labels[j]) & (
            np.abs(candidates.scores_N - scores[j]) <= tolerance.score
        )
        if same.any():
            count += 1
            diff = np.abs(candidates.boxes_N4[same] - boxes[j]).max(axis=1).min()
            worst = max(worst, float(diff))
    return count, worst


def _detection_problems(report: VerifyReport) -> None:
    """One phrase for the detection checks, naming the likely cause."""
    if not (report.missing or report.extra):
        return
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
    report.problems.append("post-processing differs: " + ", ".join(parts))
