"""Predictor: batched inference in pixels of the original image, and picking the model file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdcli.checkpoint.file import make_payload, save_checkpoint
from ssdcli.config import recipe_from_dict, recipe_to_dict
from ssdcli.errors import CheckpointError, UsageError
from ssdcli.infer.eager import Predictor
from ssdcli.infer.open import find_default_model, model_format, open_predictor
from ssdcli.model import build_detector
from ssdcli.postprocess import PostprocessOverrides

CLASSES = ["cat", "dog", "fox"]
TINY = {
    "model": {"backbone": "tiny", "size_hw": [128, 128], "width": 0.25},
    "priors": {"aspect_ratios": [[2]] * 6},
    "postprocess": {"score_threshold": 0.2},
}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    recipe = recipe_from_dict(TINY, "test")
    return build_detector(recipe, len(CLASSES)), recipe


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, size=hw + (3,), dtype=np.uint8)
        for hw in ((96, 160), (128, 128), (200, 90))
    ]


def test_detections_are_in_original_pixels(tiny, images) -> None:
    detector, recipe = tiny
    predictor = Predictor(
        detector, recipe, class_names=CLASSES, overrides=PostprocessOverrides(score_threshold=0.05)
    )
    image = images[0]
    small = predictor.predict([image])[0]
    assert len(small) > 0
    # The same pixels reported as a decoded-at-half-size version of a 192x320 original: boxes
    # must come back exactly twice as large (only the output frame changes).
    large = predictor.predict([image], sizes_hw=[(192, 320)])[0]
    torch.testing.assert_close(large.boxes_D4, small.boxes_D4 * 2)
    torch.testing.assert_close(large.scores_D, small.scores_D)
    height, width = image.shape[:2]
    assert small.boxes_D4[:, 0::2].max() <= width and small.boxes_D4[:, 1::2].max() <= height
    assert small.boxes_D4.min() >= 0
    assert small.boxes_D4.dtype == torch.float32 and small.labels_D.dtype == torch.int64
    assert bool((small.scores_D > 0.05).all())
    assert bool((small.scores_D[:-1] >= small.scores_D[1:]).all())  # best first


def test_batched_equals_one_by_one(tiny, images) -> None:
    detector, recipe = tiny
    batched = Predictor(
        detector, recipe, overrides=PostprocessOverrides(score_threshold=0.05), batch_size=3
    ).predict(images)
    single = Predictor(
        detector, recipe, overrides=PostprocessOverrides(score_threshold=0.05), batch_size=1
    ).predict(images)
    assert len(batched) == len(single) == 3
    for a, b in zip(batched, single, strict=True):
        assert len(a) == len(b)
        torch.testing.assert_close(a.boxes_D4, b.boxes_D4, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(a.scores_D, b.scores_D, atol=1e-5, rtol=1e-5)


def test_settings_default_to_the_recipe_and_classes_filter(tiny, images) -> None:
    detector, recipe = tiny
    predictor = Predictor(
        detector, recipe, overrides=PostprocessOverrides(max_detections=5), classes=[1]
    )
    assert predictor.settings.score_threshold == 0.2 and predictor.settings.nms_iou == 0.45
    assert predictor.info.class_names == ["class0", "class1", "class2"]
    everything = Predictor(
        detector, recipe, overrides=PostprocessOverrides(max_detections=10_000)
    ).predict(images)
    for det, full in zip(predictor.predict(images), everything, strict=True):
        # The best five of class 1, even where other classes fill the first five places.
        wanted = full.scores_D[full.labels_D == 1][:5]
        assert det.labels_D.tolist() == [1] * len(wanted)
        torch.testing.assert_close(det.scores_D, wanted)


def test_preprocess_shape_and_normalisation(tiny) -> None:
    detector, recipe = tiny
    predictor = Predictor(detector, recipe)
    grey = np.full((50, 70, 3), 128, np.uint8)
    batch = predictor.preprocess([grey, grey])
    assert batch.shape == (2, 3, 128, 128) and batch.dtype == np.float32
    # (128 - 123.675) / 58.395 for the red channel, hand-computed.
    assert batch[0, 0, 0, 0] == pytest.approx(0.074065, abs=1e-5)


def _checkpoint(tiny, path: Path) -> Path:
    detector, recipe = tiny
    save_checkpoint(
        path, make_payload(detector.model.state_dict(), recipe_to_dict(recipe), CLASSES)
    )
    return path


def test_open_predictor_on_a_checkpoint(tiny, images, tmp_path: Path) -> None:
    path = _checkpoint(tiny, tmp_path / "best.pt")
    assert model_format(path) == "checkpoint"
    predictor = open_predictor(path, overrides=PostprocessOverrides(score_threshold=0.05))
    assert isinstance(predictor, Predictor)
    assert predictor.class_names == CLASSES
    detector, recipe = tiny
    expected = Predictor(
        detector, recipe, overrides=PostprocessOverrides(score_threshold=0.05)
    ).predict(images[:1])[0]
    got = predictor.predict(images[:1])[0]
    torch.testing.assert_close(got.boxes_D4, expected.boxes_D4)


def test_model_format_rejects_other_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        model_format(text)
    with pytest.raises(CheckpointError, match="does not exist"):
        model_format(tmp_path / "missing.pt")


def test_default_model_is_the_newest_best_pt(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ssd train"):
        find_default_model(tmp_path / "runs")
    old, new = tmp_path / "runs" / "a" / "best.pt", tmp_path / "runs" / "b" / "best.pt"
    for path in (new, old):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - 100, now - 100))
    os.utime(new, (now, now))
    assert find_default_model(tmp_path / "runs") == new
