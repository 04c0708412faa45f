"""Image decoding: every file kind becomes RGB uint8 HxWx3; failures name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ssdcli.data.images import image_size_hw, read_image_rgb
from ssdcli.errors import DataError

RGB = np.zeros((4, 6, 3), np.uint8)
RGB[..., 0] = 200  # pure-ish red, so a channel swap would show
RGB[..., 2] = 10


def test_colour_png_is_rgb(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    Image.fromarray(RGB).save(path)
    image = read_image_rgb(path)
    assert image.dtype == np.uint8 and image.shape == (4, 6, 3)
    np.testing.assert_array_equal(image[0, 0], [200, 0, 10])


@pytest.mark.parametrize(
    ("name", "array", "mode", "expected"),
    [
        ("gray.png", np.full((4, 6), 77, np.uint8), "L", [77, 77, 77]),
        ("rgba.png", np.dstack([RGB, np.full((4, 6), 128, np.uint8)]), "RGBA", [200, 0, 10]),
        ("palette.png", RGB, "P", [200, 0, 10]),
    ],
)
def test_other_modes_become_rgb(tmp_path: Path, name, array, mode, expected) -> None:
    path = tmp_path / name
    image = Image.fromarray(array)
    # An adaptive palette holds the exact colours (the default web palette would round them).
    image = image.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else image
    image.convert(mode).save(path)
    image = read_image_rgb(path)
    assert image.shape == (4, 6, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[1, 1], expected)


def test_sixteen_bit_is_scaled_to_eight(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    bgr16 = np.zeros((4, 6, 3), np.uint16)
    bgr16[..., 2] = 256 * 200  # red in OpenCV's BGR order
    assert cv2.imwrite(str(path), bgr16)
    image = read_image_rgb(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, 0], [200, 0, 0])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path, exif=exif)
    assert read_image_rgb(path).shape == (60, 40, 3)
    assert image_size_hw(path) == (60, 40)


def test_missing_and_corrupt_files_raise_data_error_naming_them(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"gone\.jpg does not exist"):
        read_image_rgb(tmp_path / "gone.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=r"bad\.jpg cannot be decoded"):
        read_image_rgb(bad)
    with pytest.raises(DataError, match=r"bad\.jpg cannot be read"):
        image_size_hw(bad)
