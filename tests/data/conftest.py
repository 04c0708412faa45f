"""Builders of tiny VOC data sets in tmp_path, shared by the data tests (as fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

BCCD = Path(__file__).resolve().parents[3] / "shared" / "data" / "bccd"


def _write_image(path: Path, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """``write_image(path, height=48, width=64, seed=0)``: a random-noise image file."""
    return _write_image


def voc_xml(
    filename: str,
    size_hw: tuple[int, int] | None,
    objects: Sequence[tuple[str, Sequence[float], int]],
) -> str:
    """A VOC annotation; objects are ``(name, devkit (xmin, ymin, xmax, ymax), difficult)``."""
    lines = ["<annotation>", f"  <filename>{filename}</filename>"]
    if size_hw is not None:
        lines += [
            "  <size>",
            f"    <width>{size_hw[1]}</width>",
            f"    <height>{size_hw[0]}</height>",
            "    <depth>3</depth>",
            "  </size>",
        ]
    for name, (x0, y0, x1, y1), difficult in objects:
        lines += [
            "  <object>",
            f"    <name>{name}</name>",
            f"    <difficult>{difficult}</difficult>",
            f"    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
            "</bndbox>",
            "  </object>",
        ]
    return "\n".join([*lines, "</annotation>"]) + "\n"


@pytest.fixture
def make_voc() -> Callable[..., Path]:
    """``make_voc(root, images, splits)``: a VOC folder.

    ``images`` maps an id to ``(size_hw written in XML or None, objects, image size or None for
    no image file)``; ``splits`` maps a split name to ids.
    """

    def make(
        root: Path,
        images: dict[str, tuple],
        splits: dict[str, list[str]],
    ) -> Path:
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        for seed, (image_id, (xml_hw, objects, real_hw)) in enumerate(images.items()):
            xml = voc_xml(f"{image_id}.jpg", xml_hw, objects)
            (root / "Annotations" / f"{image_id}.xml").write_text(xml)
            if real_hw is not None:
                _write_image(root / "JPEGImages" / f"{image_id}.jpg", *real_hw, seed=seed)
        for name, ids in splits.items():
            (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
        return root

    return make


@pytest.fixture
def bccd_root() -> Path:
    """The BCCD data set, or a skip when this checkout does not have it."""
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"BCCD data set not found at {BCCD}")
    return BCCD
