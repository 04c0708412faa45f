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


# Suffixes taken for images when a folder is scanned (compared lower-case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (any case: ``.JPG`` counts)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


class ImageFinder:
    """Finds the image an annotation describes among the images of some folders.

    Exporters write ``<filename>`` / ``file_name`` with another folder, another extension or none
    at all, so :meth:`find` tries the name as written (relative to each folder), its last
    component, then the annotation's stem with any image suffix in any case. The folders are
    listed once (a per-annotation glob would be quadratic in large folders).
    """

    def __init__(self, folders: list[Path]) -> None:
        self.folders = [f for f in folders if f.is_dir()]
        self._by_name: dict[str, Path] = {}
        self._by_stem: dict[str, Path] = {}
        for folder in self.folders:
            for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
                self._by_name.setdefault(path.name, path)
                self._by_name.setdefault(path.name.lower(), path)
                self._by_stem.setdefault(path.stem.lower(), path)

    def find(self, filename: str | None, stem: str) -> Path | None:
        """The image file, or None when none of the tries finds one."""
        if filename:
            filename = filename.replace("\\", "/")
            for folder in self.folders:
                candidate = folder / filename
                if candidate.is_file():  # subfolders in the name resolve here
                    return candidate
            base = Path(filename).name
            for key in (base, base.lower()):
                if key in self._by_name:
                    return self._by_name[key]
        for key in (stem.lower(), Path(filename or stem).stem.lower()):
            if key in self._by_stem:
                return self._by_stem[key]
        return None
