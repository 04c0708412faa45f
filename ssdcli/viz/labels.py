"""``labels.png``: what the ground truth looks like to the network.

Six panels: objects per class, box width and height histograms and the aspect-ratio histogram (in
pixels of the network input, i.e. after resizing the whole image to ``size_hw`` as evaluation
does), box centres as a 2-D density over the input, and objects per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ssdcli.viz.figures import new_figure, save_figure


class LabelledImage(Protocol):
    """One image's ground truth (``ssdcli.data.Record`` satisfies it).

    Attributes:
        size_hw: the image's (H, W) in pixels.
        boxes_xyxy: float [G, 4], xyxy pixels of the image.
        labels: int [G], class index 0..C-1.
    """

    size_hw: tuple[int, int]
    boxes_xyxy: np.ndarray
    labels: np.ndarray


def input_boxes(records: Sequence[LabelledImage], size_hw: tuple[int, int]) -> np.ndarray:
    """Every box scaled to a ``size_hw`` network input: float64 [N, 4], xyxy input pixels."""
    scaled = []
    for record in records:
        height, width = record.size_hw
        scale = np.array([size_hw[1] / width, size_hw[0] / height] * 2)
        scaled.append(np.asarray(record.boxes_xyxy, np.float64).reshape(-1, 4) * scale)
    return np.concatenate(scaled) if scaled else np.zeros((0, 4))


def label_figure(
    records: Sequence[LabelledImage],
    class_names: Sequence[str],
    size_hw: tuple[int, int],
    title: str | None = None,
) -> Any:
    """The six-panel label-statistics figure (a matplotlib ``Figure``)."""
    boxes = input_boxes(records, size_hw)
    labels = np.concatenate([np.asarray(r.labels, np.int64).reshape(-1) for r in records] or [[]])
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 1e-6, None)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    per_image = np.array([len(r.labels) for r in records], np.int64)
    input_h, input_w = size_hw

    figure = new_figure(13.0, 7.6)
    axes = figure.subplots(2, 3).flat
    counts = np.bincount(labels.astype(np.int64), minlength=len(class_names))
    axes[0].bar(np.arange(len(class_names)), counts, color="tab:blue")
    axes[0].set_xticks(np.arange(len(class_names)), list(class_names), rotation=60, fontsize=7)
    axes[0].set_title("objects per class", fontsize=9)
    for ax, values, name, limit in ((axes[1], wh[:, 0], "width", input_w),
                                    (axes[2], wh[:, 1], "height", input_h)):  # fmt: skip
        ax.hist(values, bins=np.linspace(0, limit, 41), color="tab:green")
        ax.set_title(f"box {name} (pixels of the {input_h}x{input_w} input)", fontsize=9)
    ratio = wh[:, 0] / wh[:, 1]
    edges = np.geomspace(1 / 8, 8, 41)  # width / height, symmetric on a log axis
    axes[3].hist(np.clip(ratio, edges[0], edges[-1]), bins=edges, color="tab:orange")
    axes[3].set_xscale("log")
    ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
    axes[3].set_xticks(ticks, ["1/8", "1/4", "1/2", "1", "2", "4", "8"])
    axes[3].minorticks_off()  # the default minor labels on a log axis overprint each other
    axes[3].set_title("aspect ratio width / height (input pixels)", fontsize=9)
    axes[4].hist2d(centres[:, 0], centres[:, 1], bins=24, range=[[0, input_w], [0, input_h]],
                   cmap="viridis")  # fmt: skip
    axes[4].set_xlim(0, input_w)
    axes[4].set_ylim(input_h, 0)  # image coordinates: y down
    axes[4].set_aspect("equal")
    axes[4].set_title("box centres (input pixels)", fontsize=9)
    top = int(per_image.max()) if per_image.size else 0
    axes[5].hist(per_image, bins=np.arange(top + 2) - 0.5, color="tab:purple")
    axes[5].set_title(f"objects per image ({len(records)} images)", fontsize=9)
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def write_label_plots(
    records: Sequence[LabelledImage],
    class_names: Sequence[str],
    out_png: str | Path,
    size_hw: tuple[int, int] = (300, 300),
    title: str | None = None,
) -> Path:
    """Writes ``labels.png`` (see :func:`label_figure`); ``size_hw`` is the network input."""
    text = title or f"{len(records)} images, network input {size_hw[0]}x{size_hw[1]}"
    return save_figure(label_figure(records, class_names, size_hw, text), out_png)
