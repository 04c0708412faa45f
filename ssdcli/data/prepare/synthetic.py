"""A synthetic VOC-format data set of simple shapes, generated deterministically from a seed.

Five classes (:data:`CLASS_NAMES`) drawn as filled polygons with random colour, rotation, mild
stretch and size (log-uniform from 4% to 90% of the image side, so every prior level has objects),
on textured, noisy backgrounds with faint clutter lines. Objects overlap and occlude each other.

Boxes are the tight boxes of the *visible* pixels of each shape, measured on an instance map drawn
with the same rasterisation as the image. Occlusion rule: a placement is rejected (and retried) if
it would leave an earlier shape with less than :data:`MIN_VISIBLE` of its pixels visible, and a
shape must have :data:`MIN_INSIDE` of its pixels inside the image; so every drawn shape is labelled
and no labelled shape is mostly hidden. Image ``i`` depends only on ``(seed, i, size)``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from ssdcli.errors import DataError

CLASS_NAMES = ("circle", "cross", "square", "star", "triangle")  # sorted: discovery keeps order
MIN_SCALE, MAX_SCALE = 0.04, 0.9  # shape extent as a fraction of the image side (log-uniform)
MIN_VISIBLE = 0.6  # share of a shape's pixels that occluders must leave visible
MIN_INSIDE = 0.75  # share of a shape's pixels that must lie inside the image
MIN_CONTRAST = 150  # L1 distance (0-255 per channel) between a shape and its background
MARKER = "synthetic.json"
_SUBPIXEL = 4  # cv2.fillPoly fractional bits


def _unit_shapes() -> dict[str, np.ndarray]:
    """Polygons in the unit disc, centred at 0, float64 ``[N, 2]``."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    star_angles = np.pi / 2 + np.arange(10) * np.pi / 5
    star_radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    star = np.stack([np.cos(star_angles), -np.sin(star_angles)], 1) * star_radii[:, None]
    tri_angles = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    triangle = np.stack([np.cos(tri_angles), -np.sin(tri_angles)], 1)
    a, b = 0.3, 0.95  # cross: arm half-width and arm length
    cross = np.array(
        [
            (-a, -b),
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
        ]
    )
    square = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * 0.72
    return {"circle": circle, "cross": cross, "square": square, "star": star, "triangle": triangle}


_SHAPES = _unit_shapes()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Uint8 ``[S, S, 3]``: base colour + smooth texture + faint clutter lines."""
    base = rng.uniform(20, 235, 3).astype(np.float32)
    grid = int(rng.integers(2, 8))
    texture = rng.normal(0, 1, (grid, grid, 3)).astype(np.float32)
    texture = base + texture * np.float32(rng.uniform(8, 35))
    # Cubic to a small grid, then linear (fast); clipping first keeps the result in 0..255.
    texture = cv2.resize(np.clip(texture, 0, 255), (16, 16), interpolation=cv2.INTER_CUBIC)
    texture = cv2.resize(np.clip(texture, 0, 255), (size, size), interpolation=cv2.INTER_LINEAR)
    image = texture.astype(np.uint8)
    for _ in range(int(rng.integers(0, 5))):
        p0, p1 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour = np.clip(base + rng.uniform(-40, 40, 3), 0, 255).tolist()
        cv2.line(
            image,
            (int(p0[0]), int(p0[1])),
            (int(p1[0]), int(p1[1])),
            colour,
            int(rng.integers(1, 3)),
            cv2.LINE_AA,
        )
    return image


@functools.cache
def _noise_tile(size: int, amplitude: int) -> np.ndarray:
    """Uint8 ``[2S, 2S, 3]`` uniform noise in ``0..2*amplitude``; images use random windows."""
    rng = np.random.default_rng([size, amplitude])
    return rng.integers(0, 2 * amplitude + 1, (2 * size, 2 * size, 3), dtype=np.uint8)


def _shape_polygon(rng: np.random.Generator, kind: str, size: int, scale: float) -> np.ndarray:
    """A random pose of ``kind`` as int32 ``[N, 2]`` fixed-point points (``_SUBPIXEL`` bits)."""
    stretch = np.sqrt(rng.uniform(0.75, 1.33))
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    radius = scale * size / 2
    low, high = min(0.6 * radius, size / 2), max(size - 0.6 * radius, size / 2)
    centre = rng.uniform(low, high, 2)
    points = (_SHAPES[kind] * [stretch, 1 / stretch]) @ rot.T * radius + centre
    return np.round(points * (1 << _SUBPIXEL)).astype(np.int32)


def _fill(canvas: np.ndarray, polygon: np.ndarray, value: object) -> None:
    """Rasterises ``polygon``; the image and the instance map use this one call."""
    cv2.fillPoly(canvas, [polygon], value, cv2.LINE_8, _SUBPIXEL)


def _place(
    rng: np.random.Generator,
    kind: str,
    size: int,
    scale: float,
    ids: np.ndarray,
    areas: list[int],
    visible: list[int],
) -> tuple[np.ndarray, tuple[int, int, int, int], int, np.ndarray] | None:
    """Tries up to 8 poses; returns (polygon, clipped extent, area, new visible) or None."""
    for _attempt in range(8):
        polygon = _shape_polygon(rng, kind, size, scale)
        x0, y0 = (polygon.min(0) >> _SUBPIXEL) - 1
        x1, y1 = (polygon.max(0) >> _SUBPIXEL) + 2
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(mask, polygon - (np.array([x0, y0]) << _SUBPIXEL), 1)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        inside = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        area = cv2.countNonZero(inside)
        if area == 0 or area < MIN_INSIDE * cv2.countNonZero(mask):
            continue
        covered = np.bincount((ids[cy0:cy1, cx0:cx1] * inside).ravel(), minlength=len(areas) + 1)
        left = np.asarray(visible, np.int64) - covered[1 : len(areas) + 1]
        if np.all(left >= MIN_VISIBLE * np.asarray(areas)):
            return polygon, (int(cx0), int(cy0), int(cx1), int(cy1)), area, left
    return None


def render_sample(
    index: int, size: int = 300, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws synthetic image ``index``.

    Returns:
        ``(image_rgb uint8 [S, S, 3], boxes int64 [G, 4], labels int64 [G])``; boxes are the
        inclusive pixel indices ``(col0, row0, col1, row1)`` of the visible pixels of each shape.
    """
    rng = np.random.default_rng([seed, index, size])
    image = _background(rng, size)
    ids = np.zeros((size, size), np.uint8)  # 0 background, k+1 shape k
    areas: list[int] = []  # pixels of shape k inside the image
    visible: list[int] = []  # pixels of shape k not covered by later shapes
    labels: list[int] = []
    regions: list[tuple[int, int, int, int]] = []  # clipped pixel extent of each shape
    count = int(rng.integers(1, 7))
    scales = np.sort(np.exp(rng.uniform(np.log(MIN_SCALE), np.log(MAX_SCALE), count)))[::-1]
    for scale in scales:  # large shapes first, so small ones lie on top
        label = int(rng.integers(len(CLASS_NAMES)))
        placed = _place(rng, CLASS_NAMES[label], size, scale, ids, areas, visible)
        if placed is None:
            continue
        polygon, (x0, y0, x1, y1), area, left = placed
        background = np.asarray(cv2.mean(image[y0:y1, x0:x1])[:3])
        _fill(image, polygon, _contrasting_colour(rng, background).tolist())
        _fill(ids, polygon, len(areas) + 1)
        visible = [*left.tolist(), area]
        areas.append(area)
        labels.append(label)
        regions.append((x0, y0, x1, y1))
    boxes = _visible_boxes(ids, regions)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    amplitude = int(rng.choice([3, 6, 10]))
    oy, ox = rng.integers(0, size, 2)
    noise = _noise_tile(size, amplitude)[oy : oy + size, ox : ox + size]
    image = cv2.subtract(cv2.add(image, noise), (amplitude,) * 3 + (0,))
    return image, boxes, np.asarray(labels, np.int64)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour (int ``[3]``) at least MIN_CONTRAST (L1) away from ``background``."""
    best, best_distance = None, -1.0
    for _ in range(16):
        colour = rng.integers(0, 256, 3)
        distance = float(np.abs(colour - background).sum())
        if distance >= MIN_CONTRAST:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _visible_boxes(ids: np.ndarray, regions: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Inclusive pixel boxes ``[G, 4]`` (col0, row0, col1, row1) of the pixels of id ``k+1``."""
    boxes = np.zeros((len(regions), 4), np.int64)
    for k, (x0, y0, x1, y1) in enumerate(regions):
        mine = ids[y0:y1, x0:x1] == k + 1
        rows, cols = np.flatnonzero(mine.any(1)), np.flatnonzero(mine.any(0))
        boxes[k] = (x0 + cols[0], y0 + rows[0], x0 + cols[-1], y0 + rows[-1])
    return boxes


def _annotation_xml(image_id: str, size: int, boxes: np.ndarray, labels: np.ndarray) -> str:
    """VOC XML with devkit coordinates (1-based inclusive pixel indices)."""
    objects = "".join(
        f"  <object>\n    <name>{CLASS_NAMES[label]}</name>\n    <pose>Unspecified</pose>\n"
        f"    <truncated>{int(box.min() == 0 or box[2:].max() == size - 1)}</truncated>\n"
        f"    <difficult>0</difficult>\n    <bndbox>\n"
        f"      <xmin>{box[0] + 1}</xmin>\n      <ymin>{box[1] + 1}</ymin>\n"
        f"      <xmax>{box[2] + 1}</xmax>\n      <ymax>{box[3] + 1}</ymax>\n"
        f"    </bndbox>\n  </object>\n"
        for box, label in zip(boxes, labels, strict=True)
    )
    return (
        f"<annotation>\n  <folder>synthetic</folder>\n  <filename>{image_id}.jpg</filename>\n"
        f"  <size>\n    <width>{size}</width>\n    <height>{size}</height>\n"
        f"    <depth>3</depth>\n  </size>\n{objects}</annotation>\n"
    )


def _split_of(index: int) -> str:
    """70% train, 15% val, 15% test, interleaved so every prefix of the set is balanced."""
    slot = index % 20
    return "train" if slot < 14 else "val" if slot < 17 else "test"


def write_synthetic(out: str | Path, images: int = 600, size: int = 300, seed: int = 0) -> Path:
    """Writes the VOC-format data set into ``out`` (created; must not hold a data set yet).

    Layout: ``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/{train,val,trainval,test}.txt``
    and ``synthetic.json`` (the generation settings).
    """
    out = Path(out)
    if (out / "Annotations").exists():
        raise DataError(f"{out} already holds a data set; fix: choose an empty --out folder")
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for index in range(images):
        image_id = f"{index:06d}"
        image, boxes, labels = render_sample(index, size, seed)
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        assert ok
        (out / "JPEGImages" / f"{image_id}.jpg").write_bytes(jpeg.tobytes())
        xml = _annotation_xml(image_id, size, boxes, labels)
        (out / "Annotations" / f"{image_id}.xml").write_text(xml)
        splits[_split_of(index)].append(image_id)
    splits["trainval"] = sorted(splits["train"] + splits["val"])
    for name, ids in splits.items():
        (out / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    settings = {"images": images, "size": size, "seed": seed, "classes": list(CLASS_NAMES)}
    (out / MARKER).write_text(json.dumps(settings, indent=1) + "\n")
    return out


def ensure_synthetic(root: str | Path, images: int = 600, size: int = 300, seed: int = 0) -> Path:
    """Returns ``root`` holding the synthetic set for these settings, generating it on first use.

    Generation goes into a temporary sibling folder renamed to ``root`` at the end, so an
    interrupted run leaves nothing half-written and concurrent callers agree on one result.

    Raises:
        DataError: ``root`` exists but holds something else (other settings or other data).
    """
    root = Path(root)
    wanted = {"images": images, "size": size, "seed": seed, "classes": list(CLASS_NAMES)}
    if root.exists():
        marker = root / MARKER
        found = json.loads(marker.read_text()) if marker.is_file() else None
        if found != wanted:
            raise DataError(
                f"data.root {root} exists but does not hold the synthetic set {wanted} "
                f"(found {found}); fix: delete the folder or set data.root to a new path"
            )
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    write_synthetic(tmp, images, size, seed)
    try:
        os.rename(tmp, root)
    except OSError:  # another process finished first: keep its copy if it is the same set
        shutil.rmtree(tmp, ignore_errors=True)
        return ensure_synthetic(root, images, size, seed)
    return root


PATTERN_SIZES_HW = ((480, 640), (300, 300), (640, 427), (256, 512))
"""``(H, W)`` of :func:`pattern_images`, in turn: landscape, square, portrait and wide."""


def pattern_images(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Deterministic unlabelled pictures: a gradient with 2-5 filled rectangles and discs.

    Sample inputs where no data set is at hand (export verification, timing); the sizes cycle
    through :data:`PATTERN_SIZES_HW` so that resizing and letterboxing are exercised.

    Returns:
        ``count`` RGB uint8 ``[H, W, 3]`` arrays; the same ``(count, seed)`` gives the same ones.
    """
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        height, width = PATTERN_SIZES_HW[i % len(PATTERN_SIZES_HW)]
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        base = rng.uniform(0, 255, size=(1, 1, 3)).astype(np.float32)
        image = (base * (0.5 + 0.5 * y) + 60 * x).clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(2, 6))):
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            x1, y1 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            x2 = min(width - 1, x1 + int(rng.integers(30, width // 2)))
            y2 = min(height - 1, y1 + int(rng.integers(30, height // 2)))
            if rng.random() < 0.5:
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness=-1)
            else:
                radius = max(8, min(x2 - x1, y2 - y1) // 2)
                cv2.circle(image, ((x1 + x2) // 2, (y1 + y2) // 2), radius, colour, -1)
        images.append(image)
    return images
