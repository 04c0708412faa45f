"""Drawing detections: a new image, boxes where asked, captions readable, sizes scaled."""

from __future__ import annotations

import numpy as np
import torch

from ssdcli.viz.draw import class_colour, draw_detections, make_grid


def test_draws_on_a_copy_along_the_box_edges() -> None:
    image = np.full((100, 120, 3), 128, np.uint8)
    drawn = draw_detections(image, [[20, 30, 80, 90]], [1], [0.87], ["cat", "dog"])
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert np.all(image == 128)  # input untouched
    np.testing.assert_array_equal(drawn[60, 20], class_colour(1))  # left edge, class colour
    np.testing.assert_array_equal(drawn[60, 50], [128, 128, 128])  # inside stays clear
    assert np.any(drawn[:30, 20:80] != 128)  # caption above the box


def test_caption_goes_inside_when_the_box_touches_the_top() -> None:
    image = np.zeros((60, 60, 3), np.uint8)
    drawn = draw_detections(
        image, torch.tensor([[5.0, 0.0, 55.0, 50.0]]), torch.tensor([0]), None, ["a"]
    )
    assert np.any(drawn[2:12, 8:20] != 0)


def test_unknown_label_and_line_width_scale_with_the_image() -> None:
    small = draw_detections(np.zeros((100, 100, 3), np.uint8), [[10, 10, 90, 90]], [7], None, [])
    large = draw_detections(
        np.zeros((1000, 1000, 3), np.uint8), [[100, 100, 900, 900]], [7], None, []
    )
    colour = class_colour(7)
    assert np.sum(np.all(small[50, :30] == colour, axis=-1)) == 1
    assert np.sum(np.all(large[500, :300] == colour, axis=-1)) >= 3


def test_colours_differ_between_neighbouring_classes() -> None:
    colours = [np.array(class_colour(k)) for k in range(20)]
    assert min(np.abs(a - b).sum() for a, b in zip(colours, colours[1:], strict=False)) > 100


def test_grid_tiles_images() -> None:
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (0, 50, 100)]
    grid = make_grid(tiles, columns=2, pad=2)
    assert grid.shape == (2 * 12 + 2, 2 * 22 + 2, 3)
    assert np.all(grid[14:24, 2:22] == 100) and np.all(grid[14:24, 24:44] == 255)
