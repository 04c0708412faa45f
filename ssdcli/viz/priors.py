"""Drawing priors (default boxes) on a blank canvas or an image, one colour per feature level.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch); imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Colour per level index (matplotlib's tab10), repeated past ten levels.
LEVEL_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class PriorGroup:
    """The priors of one feature level at some of its cells, drawn in the level's colour.

    Attributes:
        level: level index (0 = the finest map); picks the colour.
        label: legend text, e.g. ``"level 0: 38x38, step 8, 4 priors/cell"``.
        boxes_xyxy: np.ndarray[N, 4] float: priors as ``xyxy`` in pixels of the network input.
        cells_xyxy: np.ndarray[M, 4] float: the cells they belong to (``xyxy`` input pixels).
    """

    level: int
    label: str
    boxes_xyxy: np.ndarray
    cells_xyxy: np.ndarray


def level_color(level: int) -> str:
    """Hex colour of a level index."""
    return LEVEL_COLORS[level % len(LEVEL_COLORS)]


def draw_priors(
    out_path: str | Path,
    size_hw: tuple[int, int],
    groups: Sequence[PriorGroup],
    image_rgb: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Draw prior boxes, their cells and a legend, and save a PNG.

    Args:
        out_path: PNG file to write (parent folders are created).
        size_hw: ``(H, W)`` of the network input; the canvas (or the image) has this size.
        groups: what to draw, one colour per ``group.level``.
        image_rgb: optional background, np.ndarray[H, W, 3] uint8 RGB already resized to
            ``size_hw``; None draws a white canvas.
        title: optional figure title.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    height, width = size_hw
    boxes = [g.boxes_xyxy for g in groups if len(g.boxes_xyxy)]
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    x0 = min(0.0, float(all_boxes[:, 0].min(initial=0.0)))
    y0 = min(0.0, float(all_boxes[:, 1].min(initial=0.0)))
    x1 = max(float(width), float(all_boxes[:, 2].max(initial=width)))
    y1 = max(float(height), float(all_boxes[:, 3].max(initial=height)))
    margin = 0.02 * max(x1 - x0, y1 - y0)

    scale = 7.0 / max(x1 - x0, y1 - y0)
    fig = Figure(figsize=((x1 - x0) * scale + 3.2, (y1 - y0) * scale + 0.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("#e8e8e8")  # outside the input: shows priors that extend past the image
    if image_rgb is not None:
        ax.imshow(image_rgb, extent=(0, width, height, 0), interpolation="bilinear")
    else:
        ax.add_patch(Rectangle((0, 0), width, height, facecolor="white", edgecolor="none"))
    ax.add_patch(Rectangle((0, 0), width, height, fill=False, edgecolor="black", linewidth=1.0))

    handles = []
    for group in groups:
        color = level_color(group.level)
        # Finer levels (smaller boxes) on top so that large priors never hide them.
        zorder = 10 + 1.0 / (1 + group.level)
        for cx0, cy0, cx1, cy1 in group.cells_xyxy:
            ax.add_patch(
                Rectangle(
                    (cx0, cy0), cx1 - cx0, cy1 - cy0,
                    fill=False, edgecolor=color, linestyle=":", lw=1.0, zorder=zorder,
                )
            )  # fmt: skip
            centre = ((cx0 + cx1) / 2, (cy0 + cy1) / 2)
            ax.plot(*centre, marker="o", color=color, markersize=3.5, zorder=zorder)
        for bx0, by0, bx1, by1 in group.boxes_xyxy:
            ax.add_patch(
                Rectangle(
                    (bx0, by0), bx1 - bx0, by1 - by0,
                    fill=False, edgecolor=color, lw=1.4, zorder=zorder,
                )
            )  # fmt: skip
        handles.append(Line2D([], [], color=color, linewidth=2, label=group.label))
    handles.append(Line2D([], [], color="black", linestyle=":", marker="o", label="cell, centre"))

    ax.set_xlim(x0 - margin, x1 + margin)
    ax.set_ylim(y1 + margin, y0 - margin)  # image rows grow downwards
    ax.set_aspect("equal")
    ax.set_xlabel("x (input pixels)")
    ax.set_ylabel("y (input pixels)")
    if title:
        ax.set_title(title, fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)

    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path
