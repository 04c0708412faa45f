"""The verification itself: the exported file and the eager checkpoint run on the same images,
their inputs, head outputs and detections compared (see :mod:`ssdcli.export.verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.errors import ExportError
from ssdcli.export.verify.determined import Candidates, explain_differences, image_candidates
from ssdcli.export.verify.diagnosis import box_off, detection_problem, input_problem
from ssdcli.export.verify.matching import DetectionArrays, detection_arrays, greedy_match
from ssdcli.export.verify.report import VerifyReport
from ssdcli.export.verify.tolerance import FLOAT32, Tolerance

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.infer.base import BasePredictor
    from ssdcli.infer.runtimes import ExportedPredictor
    from ssdcli.postprocess import Detections, PostprocessSettings


def verify_export(
    loaded: LoadedDetector,
    path: Path,
    images: list[np.ndarray],
    dynamic_batch: bool,
    tolerance: Tolerance = FLOAT32,
) -> VerifyReport:
    """Run the exported file and the eager model on ``images`` and compare (see the package doc).

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
    from ssdcli.export.verify.heads import exported_head_outputs
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
    problem = detection_problem(report)
    if problem:
        report.problems.append(problem)
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


def _priors_output(exported: ExportedPredictor, inputs_BCHW: np.ndarray) -> np.ndarray:
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
    """Compare the preprocessed inputs; a difference names the metadata field that causes it."""
    if ref_BCHW.shape != got_BCHW.shape:
        report.problems.append(
            f"input size: the file takes {got_BCHW.shape[2:]}, the checkpoint {ref_BCHW.shape[2:]}"
        )
        report.input_diff = float("inf")
        return
    report.input_diff = float(np.abs(ref_BCHW - got_BCHW).max()) if ref_BCHW.size else 0.0
    if not report.input_diff <= tolerance.inputs:  # NaN fails too
        report.problems.append(input_problem(report.input_diff, eager.info, exported.info))


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
    output must be a near-tie (:func:`~ssdcli.export.verify.determined.explain_differences`).
    """
    side = float(max(size_hw))
    pool = DetectionArrays(candidates.boxes_N4, candidates.scores_N, candidates.labels_N)
    exported_arrays = detection_arrays(exported)
    in_ref = greedy_match(pool, detection_arrays(reference), side, tolerance)
    in_exp = greedy_match(pool, exported_arrays, side, tolerance)
    report.reference_unexplained += int(in_ref.unpaired_D.sum())
    differs = in_ref.paired_N ^ in_exp.paired_N
    floor = np.full(len(differs), -np.inf, dtype=np.float32)
    for has, lacking in ((in_ref.paired_N, exported), (in_exp.paired_N, reference)):
        if len(lacking) >= cutoffs.max_detections and len(lacking):
            floor[has & differs] = float(lacking.scores_D.min())
    explained = explain_differences(
        candidates, differs, floor, cutoffs, report.tie_eps, tolerance.tie_iou
    )
    both, only_exp = in_ref.paired_N & in_exp.paired_N, in_exp.paired_N & ~in_ref.paired_N
    report.detections += int(both.sum())
    report.set_aside += int(explained.sum())
    report.missing += int((in_ref.paired_N & ~in_exp.paired_N & ~explained).sum())
    report.dropped += int((only_exp & ~explained).sum())
    off, off_px = box_off(candidates, exported_arrays, in_exp.unpaired_D, tolerance)
    report.box_off += off
    report.box_off_px = max(report.box_off_px, off_px)
    report.extra += int((only_exp & ~explained).sum() + in_exp.unpaired_D.sum())
    if in_exp.box_diffs.size:
        report.max_box_diff = max(report.max_box_diff, float(in_exp.box_diffs.max()))
        report.max_box_diff_px = max(report.max_box_diff_px, float(in_exp.box_diffs.max()) * side)
        report.max_score_diff = max(report.max_score_diff, float(in_exp.score_diffs.max()))
