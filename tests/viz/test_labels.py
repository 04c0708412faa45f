"""``labels.png``: boxes scaled to the network input, the panels, ``prepare-data --plots``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.data.records import Record
from ssdcli.viz.labels import input_boxes, label_figure, write_label_plots


def _records() -> list[Record]:
    return [
        Record.make("a", "a.png", (100, 200), [[0, 0, 100, 50], [100, 50, 200, 100]], [0, 1]),
        Record.make("b", "b.png", (300, 300), [[30, 60, 90, 120]], [1]),
        Record.make("c", "c.png", (50, 50)),  # no objects
    ]


def test_boxes_are_scaled_to_the_network_input() -> None:
    # A 200-wide, 100-high image resized to 300 x 300: x * 1.5, y * 3; the 300 x 300 one is as is.
    np.testing.assert_allclose(
        input_boxes(_records(), (300, 300)),
        [[0, 0, 150, 150], [150, 150, 300, 300], [30, 60, 90, 120]],
    )


def test_figure_has_the_six_panels() -> None:
    figure = label_figure(_records(), ["cat", "dog"], (300, 300))
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == [
        "objects per class",
        "box width (pixels of the 300x300 input)",
        "box height (pixels of the 300x300 input)",
        "aspect ratio width / height (input pixels)",
        "box centres (input pixels)",
        "objects per image (3 images)",
    ]
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert heights == [1, 2]  # one cat, two dogs


def test_write_label_plots_and_prepare_data_plots(tmp_path: Path) -> None:
    png = write_label_plots(_records(), ["cat", "dog"], tmp_path / "sub" / "labels.png")
    assert cv2.imread(str(png)) is not None

    out = tmp_path / "shapes"
    args = ["prepare-data", "synthetic", "--out", str(out), "--images", "12", "--size", "64"]
    result = CliRunner().invoke(app, [*args, "--plots"])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out / "labels.png"))
    assert image is not None and image.shape[0] > 300
    assert "labels.png (label statistics)" in result.output


def test_prepare_data_plots_use_the_input_size(tmp_path: Path, monkeypatch) -> None:
    """``--plots`` measures boxes at the input ``ssd train --data`` uses (384), or as asked."""
    import ssdcli.viz.labels as labels_module

    sizes = []
    monkeypatch.setattr(
        labels_module,
        "write_label_plots",
        lambda records, names, out, size_hw: sizes.append(size_hw) or out,
    )
    out = tmp_path / "shapes"
    args = [
        "prepare-data",
        "synthetic",
        "--out",
        str(out),
        "--images",
        "12",
        "--size",
        "64",
        "--plots",
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, [*args, "--input-size", "512"]).exit_code == 0
    assert sizes == [(384, 384), (512, 512)]
