"""SSD augmentation properties (hypothesis) and the evaluation preprocessing (hand values)."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdcli.config import AugmentConfig
from ssdcli.data.pipeline.transforms import (
    AugmentSettings,
    augment_ssd,
    hflip_boxes,
    normalize_image,
    preprocess_image,
    sample_iou_crop,
)

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


@st.composite
def samples(draw):
    """An image size, boxes of positive area inside it, and an output size."""
    height, width = draw(st.integers(8, 96)), draw(st.integers(8, 96))
    count = draw(st.integers(0, 6))
    boxes = []
    for _ in range(count):
        x0 = draw(st.floats(0, width - 1, allow_nan=False))
        y0 = draw(st.floats(0, height - 1, allow_nan=False))
        x1 = draw(st.floats(x0 + 0.5, width, allow_nan=False).filter(lambda v, a=x0: v > a))
        y1 = draw(st.floats(y0 + 0.5, height, allow_nan=False).filter(lambda v, a=y0: v > a))
        boxes.append([x0, y0, x1, y1])
    out_hw = (draw(st.integers(8, 64)), draw(st.integers(8, 64)))
    return (height, width), np.array(boxes, np.float32).reshape(-1, 4), out_hw


flags = st.builds(
    AugmentSettings, st.booleans(), st.booleans(), st.floats(1.0, 4.0), st.booleans(), st.booleans()
)


@settings(max_examples=150, deadline=None)
@given(samples(), flags, st.integers(0, 2**32 - 1))
def test_boxes_stay_inside_keep_area_and_align(sample, augment, seed) -> None:
    (height, width), boxes, out_hw = sample
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = augment_ssd(image, boxes, out_hw, np.random.default_rng(seed), augment)
    assert out.image.shape == (*out_hw, 3) and out.image.dtype == np.uint8
    assert out.boxes_xyxy.dtype == np.float32 and out.boxes_xyxy.shape == (len(out.keep), 4)
    assert np.all(out.boxes_xyxy >= 0)
    assert np.all(out.boxes_xyxy[:, [0, 2]] <= out_hw[1])
    assert np.all(out.boxes_xyxy[:, [1, 3]] <= out_hw[0])
    assert np.all(out.boxes_xyxy[:, 2:] > out.boxes_xyxy[:, :2])  # never zero area
    assert len(set(out.keep.tolist())) == len(out.keep)
    assert np.all((out.keep >= 0) & (out.keep < len(boxes)))
    again = augment_ssd(image, boxes, out_hw, np.random.default_rng(seed), augment)
    np.testing.assert_array_equal(out.image, again.image)  # a function of the generator
    np.testing.assert_array_equal(out.boxes_xyxy, again.boxes_xyxy)


PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_kept_boxes_still_frame_their_own_object(seed) -> None:
    """Each box is painted its label's colour; after augmentation the pixel at the centre of
    each (large enough) output box still has the colour of the label that goes with it."""
    image = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array(
        [[5, 5, 45, 50], [60, 10, 110, 40], [120, 60, 155, 115], [20, 70, 90, 110]], np.float32
    )
    labels = np.array([3, 0, 4, 1])
    for box, label in zip(boxes.astype(int), labels, strict=True):
        image[box[1] : box[3], box[0] : box[2]] = PALETTE[label]
    augment = AugmentSettings.from_config(AugmentConfig(photometric=False))
    out = augment_ssd(image, boxes, (96, 96), np.random.default_rng(seed), augment)
    for box, label in zip(out.boxes_xyxy, labels[out.keep], strict=True):
        if min(box[2] - box[0], box[3] - box[1]) < 6:
            continue
        centre = out.image[int((box[1] + box[3]) / 2), int((box[0] + box[2]) / 2)].astype(int)
        nearest = np.argmin(np.abs(PALETTE - centre).sum(1))
        assert nearest == label


def test_flip_twice_is_identity() -> None:
    boxes = np.array([[0, 1, 10, 12], [3.5, 4, 50, 40]], np.float32)
    once = hflip_boxes(boxes, 50)
    np.testing.assert_array_equal(once, [[40, 1, 50, 12], [0, 4, 46.5, 40]])
    np.testing.assert_array_equal(hflip_boxes(once, 50), boxes)


def test_flip_only_mirrors_the_plain_resize() -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    boxes = np.array([[4, 5, 14, 25]], np.float32)
    resized = cv2.resize(image, (80, 60), interpolation=cv2.INTER_LINEAR)
    only_flip = AugmentSettings.from_config(
        AugmentConfig(photometric=False, zoom_out=False, iou_crop=False, hflip=True)
    )
    seen = set()
    for seed in range(8):
        out = augment_ssd(image, boxes, (60, 80), np.random.default_rng(seed), only_flip)
        flipped = not np.array_equal(out.image, resized)
        seen.add(flipped)
        expected = [[52, 10, 72, 50]] if flipped else [[8, 10, 28, 50]]
        np.testing.assert_array_equal(out.image, cv2.flip(resized, 1) if flipped else resized)
        np.testing.assert_allclose(out.boxes_xyxy, expected)
    assert seen == {True, False}


def test_zoom_out_fills_with_the_given_colour() -> None:
    image = np.full((20, 20, 3), 255, np.uint8)
    zoom_only = AugmentSettings(
        photometric=False, zoom_out=True, max_zoom=4.0, iou_crop=False, hflip=False
    )
    for seed in range(10):
        out = augment_ssd(
            image,
            np.array([[2, 2, 18, 18]], np.float32),
            (40, 40),
            np.random.default_rng(seed),
            zoom_only,
            fill_rgb=(1, 2, 3),
        )
        if np.any(np.all(out.image == (1, 2, 3), axis=2)):
            box = out.boxes_xyxy[0]
            assert box[2] - box[0] < 32  # the 16 px object shrank with the canvas
            return
    raise AssertionError("no zoom out in 10 seeds")


@settings(max_examples=80, deadline=None)
@given(samples(), st.integers(0, 2**32 - 1))
def test_crop_patch_obeys_the_ssd_constraints(sample, seed) -> None:
    (height, width), boxes, _ = sample
    patch = sample_iou_crop(np.random.default_rng(seed), boxes, width, height)
    if patch is None:
        return
    w, h = patch[2] - patch[0], patch[3] - patch[1]
    assert patch[0] >= 0 and patch[1] >= 0 and patch[2] <= width and patch[3] <= height
    assert 0.5 <= w / h <= 2.0
    assert w >= int(0.3 * width) and h >= int(0.3 * height)
    if len(boxes):
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert np.any(np.all((centres > patch[:2]) & (centres < patch[2:]), axis=1))


def test_preprocess_image_hand_values_rgb_and_bgr() -> None:
    image = np.zeros((2, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # R, G, B
    rgb = preprocess_image(image, (4, 8), (10, 10, 0), (1, 2, 3), "rgb")
    assert rgb.shape == (3, 4, 8) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[:, 0, 0], [0.0, 5.0, 10.0])
    bgr = preprocess_image(image, (2, 4), (30, 20, 10), (1, 1, 2), "bgr")
    np.testing.assert_allclose(bgr[:, 1, 3], [0.0, 0.0, 0.0])  # B-30, G-20, (R-10)/2


def test_normalize_matches_the_formula_on_random_pixels() -> None:
    image = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = normalize_image(image, MEAN, STD, "bgr")
    expected = (image[..., ::-1].astype(np.float64) - MEAN) / STD
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
