"""SSD training augmentation and the one evaluation preprocessing, on uint8 with OpenCV/numpy.

Training (SSD paper section 2.2 "Data augmentation"): zoom out (canvas up to ``max_zoom`` times
the image, filled with the mean colour), IoU-constrained random crop, photometric distortions
(brightness, contrast, saturation, hue in random order), horizontal flip, resize to the input
size. Boxes are pixel xyxy throughout; normalisation to ``[0, 1]`` happens later, in one step.

Speed: the zoom-out canvas is never built. The crop is computed on box coordinates only; then the
visible part of the source image is resized once into its place in the output, and the
photometric steps run on that resized part (fewer pixels; the fill stays the exact mean colour,
as in the paper, where photometric distortion precedes the zoom out). Every random draw comes
from the ``numpy.random.Generator`` passed in, so a sample depends only on how that generator
was seeded (the data set seeds it from (seed, epoch, index)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from ssdcli.boxes import resized_hw
from ssdcli.config import AugmentConfig

# Minimum IoU of the crop with some object; None keeps the whole image (SSD paper, section 2.2).
CROP_OPTIONS = (None, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
CROP_TRIALS = 50
CROP_MODES = 20  # modes tried before keeping the whole image (the paper loops forever)


@dataclass(frozen=True)
class AugmentSettings:
    """Which training augmentations run: the recipe's ``data.augment``, typed.

    No defaults of its own: :meth:`from_config` takes them from
    :class:`~ssdcli.config.AugmentConfig`, the one place they are written.
    """

    photometric: bool
    zoom_out: bool
    max_zoom: float
    iou_crop: bool
    hflip: bool

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> AugmentSettings:
        """From the recipe's ``data.augment`` (or any object with these attributes)."""
        return cls(**{name: getattr(cfg, name) for name in cls.__dataclass_fields__})

    @classmethod
    def defaults(cls) -> AugmentSettings:
        """The recipe defaults (``AugmentConfig()``): every SSD augmentation on."""
        return cls.from_config(AugmentConfig())


class Augmented(NamedTuple):
    """One augmented sample.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB at the output ``size_hw``.
        boxes_xyxy: float32 ``[G', 4]``, xyxy pixels of ``image``, positive width and height.
        keep: int64 ``[G']``, index of each output box among the input boxes (``labels[keep]``).
    """

    image: np.ndarray
    boxes_xyxy: np.ndarray
    keep: np.ndarray


def _iou_with_patches(boxes: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """IoU ``[T, G]`` of xyxy ``patches [T, 4]`` with ``boxes [G, 4]``."""
    lt = np.maximum(boxes[None, :, :2], patches[:, None, :2])
    rb = np.minimum(boxes[None, :, 2:], patches[:, None, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    patch_areas = (patches[:, 2] - patches[:, 0]) * (patches[:, 3] - patches[:, 1])
    return inter / (areas[None] + patch_areas[:, None] - inter)


def sample_iou_crop(
    rng: np.random.Generator, boxes_xyxy: np.ndarray, width: int, height: int
) -> np.ndarray | None:
    """SSD's patch sampler: int ``[4]`` xyxy patch of a ``width x height`` canvas, or None (all).

    A patch has sides of 0.3..1 of the canvas and aspect ratio 0.5..2, contains the centre of at
    least one box, and has IoU >= the drawn minimum with at least one box. The trials of one mode
    are drawn and checked together (vectorised); the first trial that passes is used.
    """
    centres = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
    for _mode in range(CROP_MODES):
        min_iou = CROP_OPTIONS[rng.integers(len(CROP_OPTIONS))]
        if min_iou is None:
            return None
        draws = rng.uniform(0, 1, (CROP_TRIALS, 4))
        wh = (draws[:, :2] * 0.7 + 0.3) * (width, height)
        wh = wh.astype(int)
        lt = (draws[:, 2:] * ((width, height) - wh)).astype(int)
        patches = np.concatenate([lt, lt + wh], axis=1)
        ok = (wh.min(1) > 0) & (wh[:, 0] <= 2 * wh[:, 1]) & (wh[:, 1] <= 2 * wh[:, 0])
        if len(boxes_xyxy):
            inside = (centres[None] > patches[:, None, :2]) & (centres[None] < patches[:, None, 2:])
            ok &= inside.all(2).any(1)
            ok &= _iou_with_patches(boxes_xyxy, patches).max(1) >= min_iou
        passing = np.flatnonzero(ok)
        if len(passing):
            return patches[passing[0]]
    return None


@functools.cache
def _lut(kind: str, value: float) -> np.ndarray:
    """256-entry uint8 look-up tables for the photometric steps."""
    x = np.arange(256, dtype=np.float64)
    if kind == "brightness":
        return np.clip(x + value, 0, 255).astype(np.uint8)
    if kind == "saturation":  # scales S of HSV; H and V unchanged
        table = np.stack([x, np.clip(x * value, 0, 255), x], axis=1)
    else:  # hue: OpenCV uint8 hue is 0..179 in 2-degree units
        shifted = np.where(x < 180, (x + value) % 180, x)
        table = np.stack([shifted, x, x], axis=1)
    return table.astype(np.uint8).reshape(256, 1, 3)


def photometric_distort(image_rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness (+-32), contrast (x0.5..1.5), saturation (x0.5..1.5), hue (+-18 degrees), each
    with probability 1/2, in random order (uint8 ``[H, W, 3]`` RGB in and out)."""
    order = rng.permutation(4)
    apply = rng.random(4) < 0.5
    delta, alpha, saturation, hue = rng.uniform((-32, 0.5, 0.5, -9), (32, 1.5, 1.5, 9)).tolist()
    image, hsv = image_rgb, None
    for step in order:
        if not apply[step]:
            continue
        if step < 2 and hsv is not None:
            image, hsv = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), None
        if step >= 2 and hsv is None:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        if step == 0:
            image = cv2.LUT(image, _lut("brightness", round(delta)))
        elif step == 1:  # blend with the mean grey, like torchvision's adjust_contrast
            grey = float(np.dot(cv2.mean(image)[:3], (0.299, 0.587, 0.114)))
            table = np.clip(alpha * np.arange(256) + (1 - alpha) * grey, 0, 255)
            image = cv2.LUT(image, table.astype(np.uint8))
        elif step == 2:
            hsv = cv2.LUT(hsv, _lut("saturation", round(saturation, 2)))
        else:
            hsv = cv2.LUT(hsv, _lut("hue", round(hue)))
    return image if hsv is None else cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _zoom_and_crop(
    rng: np.random.Generator,
    boxes_xyxy: np.ndarray,
    width: int,
    height: int,
    settings: AugmentSettings,
) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]:
    """The geometry only (no pixels): zoom-out canvas and crop patch, in canvas pixels.

    Returns:
        ``(image origin (left, top) on the canvas, patch xyxy int [4], kept box indices,
        kept boxes xyxy clipped to the patch in canvas pixels)``.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    left = top = 0
    canvas_w, canvas_h = width, height
    if settings.zoom_out and settings.max_zoom > 1 and rng.random() < 0.5:
        ratio = rng.uniform(1.0, settings.max_zoom)
        canvas_w, canvas_h = int(width * ratio), int(height * ratio)
        left, top = (rng.uniform(0, 1, 2) * (canvas_w - width, canvas_h - height)).astype(int)
    boxes = boxes + (left, top, left, top)
    patch = sample_iou_crop(rng, boxes, canvas_w, canvas_h) if settings.iou_crop else None
    if patch is None:
        return (left, top), np.array([0, 0, canvas_w, canvas_h]), np.arange(len(boxes)), boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # keep boxes whose centre lies in the patch
    keep = np.flatnonzero(np.all((centres > patch[:2]) & (centres < patch[2:]), axis=1))
    return (left, top), patch, keep, np.clip(boxes[keep], patch[[0, 1, 0, 1]], patch[[2, 3, 2, 3]])


def augment_ssd(
    image_rgb: np.ndarray,
    boxes_xyxy: np.ndarray,
    size_hw: tuple[int, int],
    rng: np.random.Generator,
    settings: AugmentSettings | None = None,
    fill_rgb: tuple[int, int, int] = (124, 116, 104),
    resize: str = "stretch",
) -> Augmented:
    """Applies the SSD training augmentation to one image.

    Args:
        image_rgb: uint8 ``[H, W, 3]`` RGB.
        boxes_xyxy: float ``[G, 4]``, xyxy pixels of ``image_rgb``, positive area.
        size_hw: output size ``(H, W)``.
        rng: the only source of randomness.
        settings: which steps run; None = the recipe defaults (:meth:`AugmentSettings.defaults`).
        fill_rgb: zoom-out canvas colour (the model's mean pixel).
        resize: ``"stretch"`` maps the crop onto the whole output; ``"letterbox"`` keeps its
            aspect ratio (top-left, the rest filled with ``fill_rgb``), as at inference.

    Returns:
        :class:`Augmented` (image at ``size_hw``, boxes in its pixels, kept indices).
    """
    settings = settings if settings is not None else AugmentSettings.defaults()
    height, width = image_rgb.shape[:2]
    out_h, out_w = size_hw
    (left, top), patch, keep, boxes = _zoom_and_crop(rng, boxes_xyxy, width, height, settings)
    # The visible part of the source (canvas pixels) and where it lands in the output.
    visible = np.concatenate(
        [np.maximum(patch[:2], (left, top)), np.minimum(patch[2:], (left + width, top + height))]
    )
    if np.any(visible[2:] <= visible[:2]):  # an empty image's patch may miss the source
        return Augmented(_filled(size_hw, fill_rgb), np.zeros((0, 4), np.float32), keep[:0])
    scale = np.array([out_w, out_h]) / (patch[2:] - patch[:2])
    if resize == "letterbox":
        scale[:] = scale.min()
    place = np.round((visible - patch[[0, 1, 0, 1]]) * np.tile(scale, 2)).astype(int)
    place[:2] = np.minimum(place[:2], (out_w - 1, out_h - 1))
    place[2:] = np.maximum(place[2:], place[:2] + 1)
    part = image_rgb[visible[1] - top : visible[3] - top, visible[0] - left : visible[2] - left]
    part_w, part_h = place[2] - place[0], place[3] - place[1]
    while part.shape[1] > 3 * part_w and part.shape[0] > 3 * part_h:
        part = cv2.pyrDown(part)  # low-pass before a large shrink (zoom out), not to alias
    part = cv2.resize(part, (part_w, part_h), interpolation=cv2.INTER_LINEAR)
    if settings.photometric:
        part = photometric_distort(part, rng)
    if part_w == out_w and part_h == out_h:
        image = part
    else:
        image = _filled(size_hw, fill_rgb)
        image[place[1] : place[3], place[0] : place[2]] = part
    # The exact map of the resize above: visible[:2] -> place[:2], sizes part -> place.
    gain = np.array([part_w, part_h]) / (visible[2:] - visible[:2])
    boxes = (boxes - visible[[0, 1, 0, 1]]) * np.tile(gain, 2) + place[[0, 1, 0, 1]]
    if settings.hflip and rng.random() < 0.5:
        image = cv2.flip(image, 1)
        boxes = hflip_boxes(boxes, out_w)
    boxes = np.clip(boxes, 0, [out_w, out_h, out_w, out_h]).astype(np.float32)
    positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Augmented(image, boxes[positive].reshape(-1, 4), keep[positive].astype(np.int64))


@functools.lru_cache(maxsize=4)
def _fill_template(size_hw: tuple[int, int], fill_rgb: tuple[int, int, int]) -> np.ndarray:
    return cv2.merge([np.full(size_hw, value, np.uint8) for value in fill_rgb])


def _filled(size_hw: tuple[int, int], fill_rgb: tuple[int, int, int]) -> np.ndarray:
    """A new uint8 ``[H, W, 3]`` image of one colour (copied from a cached template)."""
    return _fill_template(tuple(size_hw), tuple(int(v) for v in fill_rgb)).copy()


def hflip_boxes(boxes_xyxy: np.ndarray, width: int) -> np.ndarray:
    """Mirrors xyxy pixel boxes of an image ``width`` pixels wide (x -> width - x)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)


@functools.lru_cache(maxsize=8)
def _normalise_luts(mean: tuple, std: tuple) -> tuple[np.ndarray, ...]:
    """Float32 table of each model input channel ``k``: ``(x - mean[k]) / std[k]``."""
    x = np.arange(256, dtype=np.float64)
    return tuple(((x - mean[k]) / std[k]).astype(np.float32).reshape(256, 1) for k in range(3))


def normalize_image(
    image_rgb: np.ndarray,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    channel_order: str = "rgb",
) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB -> float32 ``[3, H, W]`` ``(pixel - mean) / std`` in the model's
    channel order (``mean``/``std`` in 0-255 units, given in that order)."""
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', not {channel_order!r}")
    luts = _normalise_luts(tuple(map(float, mean)), tuple(map(float, std)))
    planes = cv2.split(np.ascontiguousarray(image_rgb))
    sources = (0, 1, 2) if channel_order == "rgb" else (2, 1, 0)  # RGB plane of model channel k
    out = np.empty((3, *image_rgb.shape[:2]), np.float32)
    for k, source in enumerate(sources):
        cv2.LUT(planes[source], luts[k], dst=out[k])
    return out


def preprocess_image(
    image_rgb_HW3_uint8: np.ndarray,
    size_hw: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    channel_order: str = "rgb",
    resize: str = "stretch",
) -> np.ndarray:
    """The one evaluation/inference preprocessing: resize (bilinear) + normalise.

    Args:
        image_rgb_HW3_uint8: uint8 ``[H, W, 3]`` RGB (from :func:`read_image_rgb`).
        size_hw: network input size ``(H, W)``.
        mean, std: per channel, 0-255 units, in ``channel_order``.
        channel_order: ``"rgb"`` or ``"bgr"`` (what the network expects).
        resize: ``"stretch"`` or ``"letterbox"`` (padding at the right and bottom is the mean
            pixel, 0 after normalisation).

    Returns:
        float32 ``[3, H, W]``. Normalised boxes map back to the original image through
        :func:`frame_hw`.
    """
    height, width = size_hw
    image = image_rgb_HW3_uint8
    inner_h, inner_w = resized_hw(image.shape[:2], size_hw, resize)
    if image.shape[:2] != (inner_h, inner_w):
        image = cv2.resize(image, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
    if (inner_h, inner_w) == (height, width):
        return normalize_image(image, mean, std, channel_order)
    out = np.zeros((3, height, width), np.float32)
    out[:, :inner_h, :inner_w] = normalize_image(image, mean, std, channel_order)
    return out
