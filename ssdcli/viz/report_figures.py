"""The report's charts as PNG bytes: per-class AP bars, confusion matrices, false-positive kinds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ssdcli.viz.figures import new_figure, png_bytes


def ap_bars(class_names: Sequence[str], aps: Mapping[str, np.ndarray]) -> bytes:
    """Grouped horizontal bars: one group per class, one bar per AP column (float [C] each, NaN =
    no ground truth, drawn as no bar)."""
    count = max(len(class_names), 1)
    # Grows with the classes, capped so that 80 COCO classes stay a page-sized image.
    figure = new_figure(7.5, min(1.2 + 0.28 * count * max(len(aps), 1) ** 0.5, 30.0))
    ax = figure.subplots()
    height = 0.8 / max(len(aps), 1)
    positions = np.arange(len(class_names))
    for k, (name, values) in enumerate(aps.items()):
        values = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
        ax.barh(positions + k * height, values, height, label=name)
    ax.set_yticks(positions + height * (len(aps) - 1) / 2, list(class_names), fontsize=7)
    ax.invert_yaxis()  # first class on top, as in the table
    ax.set_xlim(0, 1)
    ax.set_xlabel("AP", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    legend_above(ax, len(aps))
    figure.tight_layout()
    return png_bytes(figure)


def legend_above(ax: Any, columns: int) -> Any:
    """The legend in one row above the plot, never over a bar (a legend inside the axes hid
    the last class's bars)."""
    return ax.legend(
        fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=max(columns, 1),
        frameon=False, borderaxespad=0.2,
    )  # fmt: skip


def confusion_heatmaps(
    counts: np.ndarray, normalised: np.ndarray, class_names: Sequence[str], threshold: float
) -> bytes:
    """Counts and row-normalised confusion matrices side by side ([C + 1, C + 1] each; the last
    row and column are background: false detections and missed objects)."""
    names = [*class_names, "background"]
    side = min(2.2 + 0.42 * len(names), 12.0)  # capped: 81 x 81 cells still fit a screen
    font = 7 if len(names) <= 30 else 4
    figure = new_figure(2 * side + 1.0, side + 0.6)
    for ax, matrix, title, fmt in zip(
        figure.subplots(1, 2),
        (counts, normalised),
        ("counts", "row-normalised"),
        ("{:d}", "{:.2f}"),
        strict=True,
    ):
        # Both panels are coloured by the row share, so a rare class's errors stand out too.
        ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, names, rotation=60, ha="right", fontsize=font)
        ax.set_yticks(ticks, names, fontsize=font)
        ax.set_xlabel("detected as", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
        ax.set_title(f"{title}, score >= {threshold:.3f}", fontsize=9)
        if len(names) <= 25:  # numbers stay legible up to about this many classes
            for (row, col), value in np.ndenumerate(matrix):
                text = fmt.format(int(value) if fmt == "{:d}" else float(value))
                dark = normalised[row, col] > 0.5
                ax.text(col, row, text, ha="center", va="center", fontsize=6,
                        color="white" if dark else "black")  # fmt: skip
    figure.tight_layout()
    return png_bytes(figure)


def fp_kind_bars(fp_kinds: np.ndarray, class_names: Sequence[str], kinds: Sequence[str]) -> bytes:
    """Stacked horizontal bars of false positives per detected class and kind (int [C, K])."""
    figure = new_figure(7.5, min(1.4 + 0.25 * max(len(class_names), 1), 24.0))
    ax = figure.subplots()
    left = np.zeros(len(class_names))
    colours = ("tab:purple", "tab:olive", "tab:orange", "tab:red")
    for k, name in enumerate(kinds):
        ax.barh(class_names, fp_kinds[:, k], left=left, label=name, color=colours[k % 4])
        left += fp_kinds[:, k]
    ax.invert_yaxis()
    ax.tick_params(labelsize=7 if len(class_names) <= 30 else 4)
    ax.set_xlabel("false positives", fontsize=8)
    legend_above(ax, len(kinds))
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return png_bytes(figure)
