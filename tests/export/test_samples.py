"""The pictures an export is checked on, and the one greedy pairing of detections (hand cases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssdcli.data import Manifest, Record, pattern_images
from ssdcli.export.verify import FLOAT32, sample_images
from ssdcli.export.verify.matching import DetectionArrays, greedy_match


def test_without_a_manifest_the_pictures_are_generated() -> None:
    lines: list[str] = []
    images = sample_images(None, 3, log=lines.append)
    expected = pattern_images(3)
    assert all(np.array_equal(a, b) for a, b in zip(images, expected, strict=True))
    assert [im.shape for im in images] == [(480, 640, 3), (300, 300, 3), (640, 427, 3)]
    assert lines == []


def test_a_manifest_whose_images_are_gone_is_reported_not_hidden(tmp_path: Path) -> None:
    gone = tmp_path / "gone.jpg"
    record = Record.make("gone", gone, (32, 32), [[1, 1, 9, 9]], [0])
    path = Manifest(["thing"], [record], {"val": [0]}, source=str(tmp_path)).save(
        tmp_path / "manifest.json"
    )
    lines: list[str] = []
    images = sample_images(path, 2, log=lines.append)
    assert all(np.array_equal(a, b) for a, b in zip(images, pattern_images(2), strict=True))
    assert len(lines) == 1 and str(path) in lines[0] and "gone.jpg" in lines[0]
    assert "generated" in lines[0]


def test_a_manifest_images_come_validation_split_first(tmp_path: Path) -> None:
    import cv2

    records = []
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8 + i, 3), value, np.uint8))
        records.append(Record.make(str(i), tmp_path / f"{i}.png", (8, 8 + i)))
    splits = {"train": [0], "val": [2], "test": [1]}
    path = Manifest(["thing"], records, splits, source=str(tmp_path)).save(tmp_path / "m.json")
    lines: list[str] = []
    images = sample_images(path, 3, log=lines.append)
    assert [int(im[0, 0, 0]) for im in images] == [30, 20, 10] and lines == []


def _arrays(boxes, scores, labels) -> DetectionArrays:
    return DetectionArrays(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


def test_greedy_match_pairs_the_closest_entry_of_the_same_class_best_first() -> None:
    # Image side 1000 px: the box tolerance 1e-3 is 1 px, the score tolerance 1e-3.
    reference = _arrays(
        [[0, 0, 10, 10], [0, 0, 10.5, 10], [50, 50, 60, 60], [0, 0, 10, 10]],
        [0.9, 0.9, 0.5, 0.8],
        [0, 0, 1, 1],
    )
    detections = _arrays(
        [[0, 0, 10.4, 10], [0, 0, 10.4, 10], [50, 50, 62, 60], [0, 0, 10, 10], [0, 0, 10, 10]],
        [0.9, 0.9, 0.5, 0.8, 0.2],
        [0, 0, 1, 0, 1],
    )
    matching = greedy_match(reference, detections, 1000.0, FLOAT32)
    # Detection 0 takes reference 1 (0.1 px away, not 0.4 px); detection 1 the remaining
    # reference 0; detection 2 is 2 px off; 3 has no class-0 entry left; 4 scores 0.6 lower.
    assert matching.paired_N.tolist() == [True, True, False, False]
    assert matching.unpaired_D.tolist() == [False, False, True, True, True]
    np.testing.assert_allclose(sorted(matching.box_diffs), [1e-4, 4e-4], rtol=1e-4)
    np.testing.assert_allclose(matching.score_diffs, [0.0, 0.0])


def test_greedy_match_never_pairs_nan() -> None:
    reference = _arrays([[0, 0, 10, 10]], [0.5], [0])
    detections = _arrays([[0, 0, np.nan, 10]], [0.5], [0])
    matching = greedy_match(reference, detections, 100.0, FLOAT32)
    assert matching.unpaired_D.tolist() == [True] and not matching.paired_N.any()
