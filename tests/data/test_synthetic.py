"""The synthetic shapes data set: determinism, tight visible boxes, VOC output without problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssdcli.data.prepare.synthetic import (
    CLASS_NAMES,
    MAX_SCALE,
    MIN_SCALE,
    _visible_boxes,
    ensure_synthetic,
    render_sample,
    write_synthetic,
)
from ssdcli.data.readers.voc import read_voc
from ssdcli.errors import DataError


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    image, boxes, labels = render_sample(5, size=128, seed=1)
    again = render_sample(5, size=128, seed=1)
    np.testing.assert_array_equal(image, again[0])
    np.testing.assert_array_equal(boxes, again[1])
    np.testing.assert_array_equal(labels, again[2])
    assert not np.array_equal(image, render_sample(5, size=128, seed=2)[0])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8


def test_visible_boxes_are_tight_around_the_visible_pixels() -> None:
    ids = np.zeros((10, 12), np.uint8)
    ids[2:7, 3:9] = 1  # shape 1: rows 2..6, cols 3..8
    ids[1:4, 6:11] = 2  # shape 2 on top, hides the top-right corner of shape 1
    ids[2:4, 3:6] = 0  # pretend background shows through (not possible, but a hand check)
    boxes = _visible_boxes(ids, [(3, 2, 9, 7), (6, 1, 11, 4)])
    np.testing.assert_array_equal(boxes, [[3, 4, 8, 6], [6, 1, 10, 3]])


def test_samples_cover_classes_scales_and_stay_inside() -> None:
    size, labels, sides = 300, [], []
    for index in range(60):
        _, boxes, found = render_sample(index, size, seed=0)
        assert len(boxes) == len(found) >= 1
        assert boxes.min() >= 0 and boxes.max() <= size - 1
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        labels += found.tolist()
        sides += ((boxes[:, 2:] - boxes[:, :2] + 1).max(1) / size).tolist()
    assert set(labels) == set(range(len(CLASS_NAMES)))
    assert min(sides) < 2 * MIN_SCALE and max(sides) > MAX_SCALE / 2


def test_written_set_reads_back_as_voc_without_problems(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "shapes", images=40, size=96, seed=0)
    manifest = read_voc(root)
    assert manifest.problems == []
    assert manifest.class_names == list(CLASS_NAMES)
    assert {k: len(v) for k, v in manifest.splits.items()} == {
        "train": 28,
        "val": 6,
        "test": 6,
        "trainval": 34,
    }
    _, boxes, labels = render_sample(0, 96, seed=0)
    first = manifest.records[0]
    np.testing.assert_array_equal(first.boxes_xyxy, boxes)  # devkit +1 on write, -1 on read
    np.testing.assert_array_equal(first.labels, labels)


def test_ensure_synthetic_generates_once_atomically(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path / "s", images=6, size=64, seed=0)
    xml = root / "Annotations" / "000000.xml"
    stamp = xml.stat().st_mtime_ns
    assert ensure_synthetic(root, images=6, size=64, seed=0) == root
    assert xml.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary folder left
    with pytest.raises(DataError, match="does not hold the synthetic set"):
        ensure_synthetic(root, images=7, size=64, seed=0)
    with pytest.raises(DataError, match="already holds a data set"):
        write_synthetic(root, images=2, size=64)
