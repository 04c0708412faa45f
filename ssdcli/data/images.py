"""Image decoding: one function that every reader, data set and command uses.

``read_image_rgb`` decodes with OpenCV, which applies the EXIF orientation and converts grayscale,
RGBA (alpha dropped), 16-bit (scaled to 8 bits) and palette images to three 8-bit channels.
``image_size_hw`` reads only the header (Pillow, lazy open) so that validating a large data set
does not decode every pixel.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ssdcli.errors import DataError

# OpenCV >= 4.10 can decode straight to RGB; older versions decode to BGR and we swap.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decodes an image file to RGB.

    Args:
        path: image file (JPEG, PNG, BMP, TIFF, WebP, GIF, ... anything OpenCV reads).

    Returns:
        ``np.ndarray`` uint8 ``[H, W, 3]``, RGB, EXIF orientation applied.

    Raises:
        DataError: the file is missing or cannot be decoded (the message names the file).
    """
    path = Path(path)
    if _IMREAD_RGB is not None:
        image = cv2.imread(str(path), _IMREAD_RGB)
    else:  # pragma: no cover - old OpenCV
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image is None:
        if not path.is_file():
            raise DataError(f"image {path} does not exist; fix: restore the file or the path")
        raise DataError(
            f"image {path} cannot be decoded (corrupt, truncated or not an image); "
            "fix: replace the file or remove it from the data set"
        )
    return image


def image_size_hw(path: str | Path) -> tuple[int, int]:
    """Reads the image size ``(H, W)`` from the file header, after EXIF orientation.

    Raises:
        DataError: the file is missing or its header cannot be read (the message names the file).
    """
    from PIL import Image, UnidentifiedImageError  # Pillow ships with matplotlib

    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; fix: restore the file or the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"image {path} cannot be read ({error}); fix: replace the file or remove it"
        ) from None
    if orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    return int(height), int(width)
