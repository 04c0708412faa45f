"""Drawing boxes with class names (and scores) on images, and tiling images into a grid.

Readable on any background: each box is a class-coloured line over a dark outline, and each
caption sits on a filled box of the class colour with black or white text, whichever contrasts
more. Line width and font size scale with the image.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ssdcli.errors import SsdError

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(label: int) -> tuple[int, int, int]:
    """A bright RGB colour for class ``label``; neighbouring labels get distant hues."""
    hue = (label * 0.618033988749895) % 1.0  # golden-ratio steps spread hues evenly
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _text_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_detections(
    image_rgb: np.ndarray,
    boxes_xyxy: np.ndarray | Sequence[Sequence[float]],
    labels: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float] | None,
    class_names: Sequence[str],
) -> np.ndarray:
    """Draws boxes and captions on a copy of ``image_rgb``.

    Args:
        image_rgb: uint8 ``[H, W, 3]`` RGB.
        boxes_xyxy: ``[D, 4]`` xyxy in pixels of ``image_rgb`` (numpy or tensor).
        labels: ``[D]`` class indices ``0..C-1`` into ``class_names``.
        scores: ``[D]`` confidences shown after the name, or None (ground truths).
        class_names: names of the classes.

    Returns:
        uint8 ``[H, W, 3]`` RGB, a new array.
    """
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    height, width = image.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.35, min(height, width) / 900)
    font_thickness = max(1, round(font_scale * 1.6))
    for i, box in enumerate(boxes):
        label = int(labels[i])
        colour = class_colour(label)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), thickness + 2)  # dark outline
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness)
        name = class_names[label] if 0 <= label < len(class_names) else f"class {label}"
        text = name if scores is None else f"{name} {float(scores[i]):.2f}"
        (text_w, text_h), base = cv2.getTextSize(text, _FONT, font_scale, font_thickness)
        pad = max(1, thickness)
        box_h = text_h + base + 2 * pad
        top = y0 - box_h if y0 - box_h >= 0 else y0  # above the box when there is room
        left = min(max(x0, 0), max(0, width - text_w - 2 * pad))
        cv2.rectangle(image, (left, top), (left + text_w + 2 * pad, top + box_h), colour, -1)
        cv2.putText(
            image,
            text,
            (left + pad, top + pad + text_h),
            _FONT,
            font_scale,
            _text_colour(colour),
            font_thickness,
            cv2.LINE_AA,
        )
    return image


def make_grid(images: Sequence[np.ndarray], columns: int, pad: int = 4) -> np.ndarray:
    """Tiles uint8 ``[H, W, 3]`` images of one size into rows of ``columns`` (white gaps)."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), 255, np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        grid[y : y + height, x : x + width] = image
    return grid


def save_image_rgb(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Writes an RGB image (format from the extension), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:
        written = False
    if not written:
        raise SsdError(
            f"cannot write image {path}; fix: use a .png or .jpg name in a writable folder"
        )
    return path
