"""PR-curve small multiples and generic line plots write PNGs of the expected layout."""

from __future__ import annotations

import struct

import numpy as np

from ssdcli.metrics.voc import PRCurve
from ssdcli.viz.plots import plot_curves, plot_pr_curves, read_columns


def png_size(path) -> tuple[int, int]:
    """(width, height) from the PNG header (IHDR chunk)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def curve(recall, precision, num_gt=2) -> PRCurve:
    r, p = np.asarray(recall, float), np.asarray(precision, float)
    return PRCurve(r, p, np.linspace(1, 0, r.size, dtype=np.float32), num_gt)


def test_pr_curves_one_panel_per_class(tmp_path):
    curves = [curve([0.5, 0.5, 1.0], [1, 0.5, 2 / 3])] * 4 + [curve([], [], 0), curve([], [])]
    aps = [0.8] * 4 + [float("nan"), 0.0]
    out = plot_pr_curves(curves, list("abcdef"), tmp_path / "sub" / "pr.png", aps, "AP50", "t")
    # 6 classes -> 3 columns x 2 rows of 2.4 x 2.2 inches (+0.4 for the title) at 100 dpi.
    assert png_size(out) == (720, 480)


def test_line_plots_from_csv_with_sparse_columns(tmp_path):
    csv_path = tmp_path / "metrics.csv"
    lines = ["iteration,loss,lr,voc07_map50"]
    lines += [
        f"{i},{1 / (i + 1)},{0.01 if i < 5 else 0.001},{'' if i % 4 else i / 10}" for i in range(10)
    ]
    csv_path.write_text("\n".join(lines) + "\n")
    columns = read_columns(csv_path)
    assert columns["voc07_map50"][:2] == ["0.0", ""]
    out = plot_curves(
        csv_path,
        tmp_path / "curves.png",
        panels={"loss": ["loss"], "lr": ["lr"], "mAP": ["voc07_map50", "absent"], "x": ["none"]},
        log_y=["lr"],
    )
    # 4 panels -> 3 columns x 2 rows of 4.2 x 3.0 inches at 100 dpi.
    assert png_size(out) == (1260, 600)


def test_line_plots_from_columns(tmp_path):
    out = plot_curves({"iteration": [0, 1, 2], "loss": [3.0, None, 1.0]}, tmp_path / "l.png")
    assert png_size(out) == (420, 300)


def test_report_bar_legends_sit_above_the_bars() -> None:
    """The AP and false-positive bar legends lie outside the plot area, so no bar is hidden."""
    import numpy as np

    from ssdcli.viz.figures import new_figure
    from ssdcli.viz.report_figures import legend_above

    figure = new_figure(7.5, 3.0)
    ax = figure.subplots()
    names = ["a", "b", "c"]
    for k, label in enumerate(("VOC07 AP50", "VOC AP50", "COCO AP")):
        ax.barh(np.arange(3) + 0.25 * k, [0.9, 0.95, 1.0], 0.25, label=label)
    ax.set_yticks(np.arange(3), names)
    ax.invert_yaxis()
    legend = legend_above(ax, 3)
    figure.tight_layout()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box, plot = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.y0 >= plot.y1 - 1  # above the axes, not over the bars
    assert box.y1 <= figure.bbox.y1 + 1  # and still inside the picture
