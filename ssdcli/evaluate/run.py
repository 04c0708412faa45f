"""``ssd eval``'s one entry point: a model on a data split -> metrics, PR curves, files.

:func:`run` loads the checkpoint (default: the newest ``runs/*/best.pt``), opens the
data set (``--data`` or the checkpoint recipe's own), checks the classes agree, evaluates, and
writes the PR-curve PNG plus the optional JSON files. The CLI only parses options and prints.
An exported file (ONNX, TorchScript, OpenVINO, TFLite) is run through its predictor instead; it
carries no recipe, so it needs ``--data`` and defaults to the split ``test`` and the metric
``voc07`` (a recipe's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ssdcli.errors import DataError, EvalError, UsageError
from ssdcli.metrics import METRICS
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.config import Recipe
    from ssdcli.data.records import Manifest
    from ssdcli.evaluate.evaluator import EvalResult


@dataclass(frozen=True, kw_only=True)
class EvalRequest:
    """What ``ssd eval`` was asked (None = the checkpoint recipe's setting)."""

    checkpoint: Path | None = None
    data: Path | None = None
    split: str | None = None
    metric: str | None = None
    json_path: Path | None = None
    save_detections: Path | None = None
    batch: int | None = None
    device: str = "auto"
    plot: Path | None = None
    report: bool = False
    report_threshold: float | None = None
    precision: str = "float32"


@dataclass
class EvalOutcome:
    """What :func:`run` did: the model, the split, the result, the files written."""

    checkpoint: Path
    split: str
    result: EvalResult
    written: list[Path] = field(default_factory=list)


def _check_paths(request: EvalRequest) -> None:
    """The input manifest exists; the output files can be written (before any work). The
    checkpoint is checked by ``load_detector`` with the same kind of message."""
    from ssdcli import paths

    if request.data is not None:
        paths.existing_file(
            request.data, "--data", "a manifest.json from ssd prepare-data", DataError
        )
    outputs = {"--json": request.json_path, "--save-detections": request.save_detections}
    for option, value in outputs.items():
        if value is not None:
            paths.output_file(value, option, "a JSON file to write")
    if request.plot is not None:
        paths.output_file(request.plot, "--plot", "a PNG file to write")


def run(request: EvalRequest, reporter: Reporter) -> EvalOutcome:
    """Evaluates a checkpoint as ``request`` says and writes its files.

    ``reporter`` hears the default checkpoint chosen and the report's threshold line.

    Raises:
        UsageError: a bad ``--metric``, ``--device`` or ``--precision``, or no checkpoint to
            default to.
        EvalError: the model's classes differ from the data set's.
        DataError, CheckpointError: unreadable data or checkpoint.
    """
    if request.metric is not None and request.metric not in METRICS:
        raise UsageError(f"--metric {request.metric!r}: use one of {', '.join(METRICS)}")
    from ssdcli.checkpoint.file import load_detector
    from ssdcli.device import check_precision, parse_device
    from ssdcli.evaluate.evaluator import (
        evaluate_detector,
    )
    from ssdcli.infer.open import find_default_model

    device = parse_device(request.device)
    check_precision(request.precision)  # a bad value fails before any work
    _check_paths(request)
    checkpoint = request.checkpoint
    if checkpoint is None:
        checkpoint = find_default_model()
        reporter.note(f"checkpoint: {checkpoint} (the newest runs/*/best.pt)")
    from ssdcli.infer.open import model_format

    if Path(checkpoint).is_file() and model_format(checkpoint) != "checkpoint":
        return _evaluate_exported(request, checkpoint, device)
    loaded = load_detector(checkpoint, device=device)
    recipe = loaded.recipe
    manifest = _open_manifest(request.data, recipe, checkpoint.parent)
    if list(manifest.class_names) != list(loaded.class_names):
        raise EvalError(
            f"{checkpoint} detects {loaded.class_names} but the data set {manifest.source} has "
            f"classes {manifest.class_names}; evaluate on the data the model was trained for "
            "(--data MANIFEST)"
        )
    split = request.split or recipe.data.test_split
    _check_split(request.split, manifest)
    metric = request.metric or recipe.eval.metric
    result = evaluate_detector(
        loaded.detector,
        manifest,
        split,
        recipe,
        metric,
        device,
        request.batch,
        progress=True,
        precision=request.precision,
    )
    outcome = EvalOutcome(checkpoint, split, result)
    _write_pr_plot(request, outcome)
    if request.report:
        from ssdcli.evaluate.report import eval_report

        outcome.written.append(
            eval_report(
                checkpoint, recipe, manifest, result, request.report_threshold, reporter.note
            )
        )
    _write_result_files(request, outcome)
    return outcome


def _write_pr_plot(request: EvalRequest, outcome: EvalOutcome) -> None:
    """The PR-curve PNG: ``--plot``, else ``<model>_pr_<split>.png`` beside the model file."""
    from ssdcli.evaluate.evaluator import panel_aps
    from ssdcli.viz.plots import plot_pr_curves

    model, split, result = outcome.checkpoint, outcome.split, outcome.result
    plot_path = request.plot or model.with_name(f"{model.stem}_pr_{split}.png")
    title = f"{model.name} on '{split}' ({len(result.detections)} images)"
    aps, ap_name = panel_aps(result)
    outcome.written.append(
        plot_pr_curves(result.curves, result.class_names, plot_path, aps, ap_name, title)
    )


def _write_result_files(request: EvalRequest, outcome: EvalOutcome) -> None:
    """``--json`` (metrics) and ``--save-detections`` (COCO results), when asked for."""
    from ssdcli.evaluate.evaluator import write_coco_results, write_metrics_json

    result = outcome.result
    if request.json_path is not None:
        outcome.written.append(
            write_metrics_json(result, request.json_path, checkpoint=str(outcome.checkpoint))
        )
    if request.save_detections is not None:
        outcome.written.append(write_coco_results(result, request.save_detections))


def _check_split(split: str | None, manifest: Manifest) -> None:
    """``--split`` names a split of the data (the error lists the ones it has)."""
    if split is not None and manifest.resolve_split(split) is None:
        known = sorted(manifest.splits)
        raise UsageError(
            f"--split {split!r}: the data set {manifest.source} has no such split; fix: use "
            f"one of --split {', '.join(known) or '(none)'}"
        )


def _evaluate_exported(request: EvalRequest, path: Path, device: str) -> EvalOutcome:
    """``ssd eval`` of an exported file (see the module doc)."""
    from ssdcli.config import recipe_from_dict
    from ssdcli.data.records import Manifest
    from ssdcli.evaluate.evaluator import (
        evaluate_predictor,
    )
    from ssdcli.infer.open import model_format, open_predictor

    fmt = model_format(path)
    if request.data is None:
        raise UsageError(
            f"{path} is an exported {fmt} file without a recipe: pass --data MANIFEST "
            "(a manifest.json from ssd prepare-data)"
        )
    if request.report:
        raise UsageError("--report needs a checkpoint (it reads the training run); drop --report")
    defaults = recipe_from_dict({}, "defaults")
    predictor = open_predictor(
        path,
        device,
        batch_size=request.batch or defaults.eval.batch_size,
        precision=request.precision,
    )
    manifest = Manifest.load(request.data)
    _check_split(request.split, manifest)
    split = request.split or defaults.data.test_split
    metric = request.metric or defaults.eval.metric
    result = evaluate_predictor(predictor, manifest, split, metric, progress=True)
    outcome = EvalOutcome(path, split, result)
    _write_pr_plot(request, outcome)
    _write_result_files(request, outcome)
    return outcome


def _open_manifest(data: Path | None, recipe: Recipe, run_dir: Path) -> Manifest:
    """``--data``, else the data the checkpoint was trained on, found where training found it
    (or beside its run folder); never generated here."""
    from ssdcli.data.prepare.manifest import build_manifest, locate_data
    from ssdcli.data.records import Manifest

    if data is not None:
        return Manifest.load(data)
    return build_manifest(locate_data(recipe.data, run_dir), generate=False)
