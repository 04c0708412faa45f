"""``report.html``: one self-contained page on what a detector does on a split.

Sections: metrics and per-class AP (table and bars), PR curves, the confusion matrix and the
false-positive kinds at one score threshold (default: the F1-maximising one, see
:mod:`ssdcli.metrics.analysis` for the exact matching rules), the worst images drawn with their
errors, the most confident false positives as crops, label statistics of the split, and, when the
run folder has them, the training curves (``metrics.csv``) and the resolved recipe. Every image is
embedded as a data URI: the file can be mailed or opened offline, no server, no script.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import ssdcli.evaluate.html as h
from ssdcli.atomic import write_text_atomic
from ssdcli.metrics import analysis as an
from ssdcli.metrics.gallery import confident_false_positives, worst_images

if TYPE_CHECKING:
    from ssdcli.evaluate.evaluator import EvalResult

REPORT_NAME = "report.html"
_COLUMNS = {"voc07": "VOC07 AP50", "voc": "VOC AP50", "coco": "COCO AP", "coco50": "COCO AP50"}


@dataclass(frozen=True)
class ReportRequest:
    """What goes into a report.

    Attributes:
        result: the evaluation (detections in xyxy pixels of the original images).
        records: the split's records, same order as ``result.detections`` (``ssdcli.data.Record``:
            image_path, size_hw, boxes_xyxy, labels, difficult, iscrowd, image_id).
        size_hw: network input (H, W), for the label statistics.
        title: page title.
        run_dir: a run folder; its ``metrics.csv`` and ``recipe.yaml`` are shown when present.
        recipe_text: the resolved recipe as YAML, shown when ``run_dir`` has no ``recipe.yaml``.
        threshold: score threshold of the error analysis; None = the F1-maximising one.
        worst: how many worst images; crops: how many confident false positives.
    """

    result: EvalResult
    records: Sequence[Any]
    size_hw: tuple[int, int]
    title: str
    run_dir: Path | None = None
    recipe_text: str | None = None
    threshold: float | None = None
    worst: int = 8
    crops: int = 12


@dataclass(frozen=True)
class Report:
    """A written report: its path and the error analysis shown in it."""

    path: Path
    analysis: an.ErrorAnalysis


def _fmt(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _metrics_section(request: ReportRequest) -> str:
    from ssdcli.viz.report_figures import ap_bars

    result = request.result
    metric_rows = [(key, _fmt(value)) for key, value in result.metrics.items()]
    aps = {_COLUMNS[key]: values for key, values in result.per_class.items()}
    return (
        f"<h2>Metrics</h2><p class='note'>split '{h.esc(result.split)}', "
        f"{len(result.detections)} images, "
        f"{sum(d.scores_D.size for d in result.detections)} detections</p>"
        + h.table(("metric", "value"), metric_rows)
        + "<h2>Per-class AP</h2>"
        + h.png_img(ap_bars(result.class_names, aps), "per-class AP")
    )


def _pr_section(result: EvalResult, folder: Path) -> str:
    from ssdcli.evaluate.evaluator import panel_aps
    from ssdcli.viz.plots import plot_pr_curves

    aps, label = panel_aps(result)
    path = plot_pr_curves(result.curves, result.class_names, folder / "pr.png", aps, label)
    return "<h2>Precision / recall per class</h2>" + h.png_img(path.read_bytes(), "PR curves")


def _errors_section(result: EvalResult, analysis: an.ErrorAnalysis, explicit: bool) -> str:
    from ssdcli.viz.report_figures import confusion_heatmaps, fp_kind_bars

    matrix, names = analysis.confusion, result.class_names
    curve, t = analysis.f1, analysis.threshold
    if explicit:
        how = "as requested"
    elif curve.thresholds.size:
        how = (
            f"maximises F1 over all classes: F1 {curve.f1[curve.best]:.3f}, precision "
            f"{curve.precision[curve.best]:.3f}, recall {curve.recall[curve.best]:.3f}"
        )
    else:
        how = "no detections: the default"
    rows = []
    for c, name in enumerate(names):
        tp = int(matrix[c, c])
        fp = int(matrix[:, c].sum()) - tp
        missed = int(matrix[c, -1])
        confused = int(matrix[c].sum()) - tp - missed
        ap_cells = [_fmt(values[c]) for values in result.per_class.values()]
        kinds = [int(v) for v in analysis.fp_kinds[c]]
        rows.append((name, int(result.num_gt[c]), *ap_cells, tp, fp, missed, confused, *kinds))
    headers = ("class", "GT", *(_COLUMNS[k] for k in result.per_class), "TP", "FP", "missed",
               "as other class", *(f"FP: {k}" for k in an.FP_KINDS))  # fmt: skip
    figure = confusion_heatmaps(matrix, an.normalise_rows(matrix), names, t)
    return (
        f"<h2>Errors at score threshold {t:.4f}</h2><p>Threshold {t:.4f}: {h.esc(how)}.</p>"
        "<p class='note'>Detections with score &ge; threshold are matched greedily by score to "
        "ground truths of their class at IoU &ge; 0.5; the rest are matched class-agnostically "
        "(a confusion: row = true class, column = detected class). Background column: missed "
        "objects; background row: false detections. FP kinds: confusion (another class's "
        "object), duplicate (its class's object already taken), localisation (IoU 0.1-0.5 with "
        "its class), background (IoU &lt; 0.1 with everything).</p>"
        + h.png_img(figure, "confusion matrix")
        + h.table(headers, rows)
        + h.png_img(fp_kind_bars(analysis.fp_kinds, names, an.FP_KINDS), "false-positive kinds")
    )


def _gallery_section(request: ReportRequest, analysis: an.ErrorAnalysis) -> str:
    from ssdcli.data.images import read_image_rgb
    from ssdcli.viz.matched_boxes import STYLE_LEGEND, crop_around, draw_matched

    result, records = request.result, request.records
    figures = []
    for i in worst_images(analysis, request.worst):
        record, match = records[i], analysis.matches[i]
        drawn = draw_matched(
            read_image_rgb(record.image_path), record.boxes_xyxy, record.labels,
            result.detections[i], match, result.class_names,
        )  # fmt: skip
        fps = int(np.isin(match.det_kind, (an.CONFUSION, an.DUPLICATE, an.LOCALISATION,
                                           an.BACKGROUND)).sum())  # fmt: skip
        missed = int((match.gt_state == an.GT_MISSED).sum())
        count = int(analysis.errors[i])
        caption = (f"{record.image_id}: {count} error{'' if count == 1 else 's'} "
                   f"({fps} FP, {missed} missed)")  # fmt: skip
        figures.append(f"<figure>{h.jpeg_img(drawn, caption)}<figcaption>{h.esc(caption)}"
                       "</figcaption></figure>")  # fmt: skip
    crops = []
    for fp in confident_false_positives(analysis, result.detections, request.crops):
        record = records[fp.image]
        box = result.detections[fp.image].boxes_D4[fp.detection]
        crop = crop_around(read_image_rgb(record.image_path), box)
        text = (f"{result.class_names[fp.label]} {fp.score:.2f}, {an.KIND_NAMES[fp.kind]} "
                f"({record.image_id})")  # fmt: skip
        crops.append(f"<figure>{h.jpeg_img(crop, text)}<figcaption>{h.esc(text)}</figcaption>"
                     "</figure>")  # fmt: skip
    none = "<p>none at this threshold</p>"
    return (
        f"<h2>The {len(figures)} images with the most errors</h2>" + h.legend(STYLE_LEGEND)
        + "<p class='note'>Errors: false detections, missed objects and class confusions at the "
        "threshold; at most the 30 highest-scored detections are drawn per image.</p>"
        + (f"<div class='gallery'>{''.join(figures)}</div>" if figures else none)
        + f"<h2>The {len(crops)} most confident false positives</h2>"
        + (f"<div class='gallery'>{''.join(crops)}</div>" if crops else none)
    )  # fmt: skip


def _labels_section(request: ReportRequest) -> str:
    from ssdcli.viz.figures import png_bytes
    from ssdcli.viz.labels import label_figure

    figure = label_figure(request.records, request.result.class_names, request.size_hw)
    return "<h2>Label statistics of the split</h2>" + h.png_img(png_bytes(figure), "labels")


def _run_section(request: ReportRequest, folder: Path) -> str:
    from ssdcli.viz.plots import plot_curves, read_columns

    parts = []
    csv_path = request.run_dir / "metrics.csv" if request.run_dir else None
    if csv_path is not None and csv_path.is_file():
        columns = read_columns(csv_path)
        metrics = [name for name in columns if name.startswith(("voc", "coco"))]
        panels = {"loss": ["loss", "box_loss", "cls_loss"], "learning rate": ["lr"]}
        panels |= {"validation": metrics} if metrics else {}
        path = plot_curves(columns, folder / "curves.png", panels=panels, log_y=("learning rate",))
        parts.append("<h2>Training curves</h2>" + h.png_img(path.read_bytes(), "training curves"))
    recipe_path = request.run_dir / "recipe.yaml" if request.run_dir else None
    text = request.recipe_text
    if recipe_path is not None and recipe_path.is_file():
        text = recipe_path.read_text(encoding="utf-8")
    if text:
        parts.append(f"<h2>Recipe</h2><pre>{h.esc(text)}</pre>")
    return "".join(parts)


def write_report(request: ReportRequest, out_html: str | Path) -> Report:
    """Builds the page and writes it atomically (temp file in the same folder, then rename)."""
    result = request.result
    analysis = an.analyse(
        request.records, result.detections, len(result.class_names), request.threshold
    )
    with tempfile.TemporaryDirectory(prefix="ssd-report-") as scratch:
        folder = Path(scratch)
        sections = [
            _metrics_section(request),
            _pr_section(result, folder),
            _errors_section(result, analysis, request.threshold is not None),
            _gallery_section(request, analysis),
            _labels_section(request),
            _run_section(request, folder),
        ]
    path = write_text_atomic(out_html, h.page(request.title, sections))
    return Report(path, analysis)


def eval_report(
    checkpoint: Path,
    recipe: Any,
    manifest: Any,
    result: EvalResult,
    threshold: float | None,
    log: Any = print,
) -> Path:
    """``ssd eval --report``: ``report.html`` beside the checkpoint (its run folder's curves and
    recipe included when present); logs the threshold the error analysis used."""
    from ssdcli.config import dump_recipe

    records = [manifest.records[i] for i in manifest.split_indices(result.split)]
    request = ReportRequest(
        result=result,
        records=records,
        size_hw=(int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1])),
        title=f"{checkpoint.name} on '{result.split}' ({len(records)} images)",
        run_dir=checkpoint.parent,
        recipe_text=dump_recipe(recipe),
        threshold=threshold,
    )
    report = write_report(request, checkpoint.parent / REPORT_NAME)
    log(threshold_line(report.analysis, threshold is not None))
    return report.path


def threshold_line(analysis: an.ErrorAnalysis, explicit: bool) -> str:
    """One line naming the report's score threshold and, by default, why it was chosen."""
    curve = analysis.f1
    if explicit or not curve.thresholds.size:
        return f"report score threshold {analysis.threshold:.4f}"
    return (
        f"report score threshold {analysis.threshold:.4f} (maximises F1 over all classes: "
        f"{curve.f1[curve.best]:.3f})"
    )
