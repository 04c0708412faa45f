"""Metric plots: per-class precision/recall curves (small multiples) and generic line plots.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch); matplotlib is imported
inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ssdcli.metrics.voc import PRCurve

Columns = Mapping[str, Sequence[Any]]


def _figure(width_in: float, height_in: float, dpi: int = 100) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, out_png: str | Path) -> Path:
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_pr_curves(
    curves: Sequence[PRCurve],
    class_names: Sequence[str],
    out_png: str | Path,
    aps: Sequence[float] | None = None,
    ap_label: str = "AP",
    title: str | None = None,
) -> Path:
    """One figure, one small precision/recall panel per class.

    Each panel shows the raw precision (thin) and its monotone envelope (the curve VOC AP
    integrates), titled with the class name and, when given, its AP.

    Args:
        curves: C curves (``ssdcli.metrics.voc.voc_pr_curves``), index = label.
        class_names: C names.
        out_png: file to write (folders created).
        aps: C values shown in the titles (NaN: class without ground truth).
        ap_label: what ``aps`` are, e.g. ``"VOC07 AP50"``.
        title: figure title.

    Returns:
        The written path.
    """
    count = max(len(curves), 1)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    figure = _figure(2.4 * cols, 2.2 * rows + (0.4 if title else 0.0))
    axes = figure.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for index, ax in enumerate(axes.flat):
        if index >= len(curves):
            ax.set_visible(False)
            continue
        curve = curves[index]
        name = class_names[index] if index < len(class_names) else f"class {index}"
        ap = None if aps is None else float(aps[index])
        head = name if ap is None or math.isnan(ap) else f"{name}  {ap_label} {ap:.3f}"
        ax.set_title(head, fontsize=8)
        if curve.num_gt == 0:
            ax.text(0.5, 0.5, "no ground truth", ha="center", va="center", fontsize=7)
        elif curve.recall.size:
            # Envelope value i holds on (recall[i-1], recall[i]]: "steps-pre", from recall 0.
            envelope = np.maximum.accumulate(curve.precision[::-1])[::-1]
            ax.plot(curve.recall, curve.precision, lw=0.6, color="0.6")
            ax.plot(
                np.concatenate(([0.0], curve.recall)),
                np.concatenate((envelope[:1], envelope)),
                lw=1.2,
                color="tab:blue",
                drawstyle="steps-pre",
            )
        else:
            ax.text(0.5, 0.5, "no detections", ha="center", va="center", fontsize=7)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=6)
    for ax in axes[-1, :]:
        ax.set_xlabel("recall", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("precision", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, out_png)


def read_columns(csv_path: str | Path) -> dict[str, list[str]]:
    """A CSV file as column name -> cells (text; empty cells stay ``""``)."""
    with Path(csv_path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[str]] = {name: [] for name in reader.fieldnames or ()}
        for row in reader:
            for name in columns:
                columns[name].append(row.get(name) or "")
    return columns


def _number(value: Any) -> float:
    """Cell -> float; empty, None or unparsable -> NaN (a gap)."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def plot_curves(
    csv_or_columns: str | Path | Columns,
    out_png: str | Path,
    *,
    x: str = "iteration",
    panels: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    title: str | None = None,
    log_y: Collection[str] = (),
) -> Path:
    """Line plots of columns against ``x`` (loss parts, learning rate, mAP over time, ...).

    Missing cells (empty, None, NaN) are skipped per column, so sparse columns such as
    evaluation metrics written every N iterations plot as lines through their own points.

    Args:
        csv_or_columns: a CSV file with a header row, or column name -> values.
        out_png: file to write (folders created).
        x: the x column; rows without it are dropped (absent column: row number).
        panels: panel title -> columns drawn together; a list of columns (one panel each);
            None: every column but ``x``, one panel each. Absent columns are ignored and a
            panel with nothing to draw says "no data".
        title: figure title.
        log_y: panel titles drawn with a logarithmic y axis (e.g. the learning rate).

    Returns:
        The written path.
    """
    if isinstance(csv_or_columns, (str, Path)):
        columns: Columns = read_columns(csv_or_columns)
    else:
        columns = csv_or_columns
    if panels is None:
        panels = [name for name in columns if name != x]
    if not isinstance(panels, Mapping):
        panels = {name: [name] for name in panels}
    length = max((len(values) for values in columns.values()), default=0)
    xs = np.array([_number(v) for v in columns.get(x, range(length))], np.float64)

    count = max(len(panels), 1)
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    figure = _figure(4.2 * cols, 3.0 * rows + (0.4 if title else 0.0))
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (panel, names) in zip(axes.flat, panels.items(), strict=False):
        drawn = 0
        for name in names:
            if name not in columns:
                continue
            ys = np.array([_number(v) for v in columns[name]], np.float64)
            n = min(len(ys), len(xs))
            keep = ~np.isnan(ys[:n]) & ~np.isnan(xs[:n])
            if panel in log_y:
                keep &= ys[:n] > 0
            if not keep.any():
                continue
            few = int(keep.sum()) <= 30
            ax.plot(xs[:n][keep], ys[:n][keep], label=name, lw=1.2, marker="o" if few else None)
            drawn += 1
        if drawn == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        elif panel in log_y:
            ax.set_yscale("log")
        if drawn > 1:
            ax.legend(fontsize=7)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, out_png)
