"""Image decoding: one function that every reader, data set and command uses.

``read_image_rgb`` decodes with OpenCV, which applies the EXIF orientation and converts grayscale,
RGBA (alpha dropped), 16-bit (scaled to 8 bits) and palette images to three 8-bit channels.
``image_size_hw`` reads only the header (Pillow, lazy open) so that validating a large data set
does not decode every pixel. ``load_image`` decodes very large images at a reduced size
(``ssd detect`` on a gigapixel scan).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ssdcli.errors import DataError

# OpenCV >= 4.10 can decode straight to RGB; older versions decode to BGR and we swap.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".jp2", ".dib"}
)
"""File suffixes (lower case) taken as images, by every reader and by ``ssd detect``."""

MAX_DECODE_SIDE = 4096
"""``load_image`` decodes images whose longer side exceeds this at 1/2, 1/4 or 1/8 size."""


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
    limit = Image.MAX_IMAGE_PIXELS
    try:
        # Header only: Pillow's decompression-bomb check guards decoding, which is not done here.
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; fix: restore the file or the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"image {path} cannot be read ({error}); fix: replace the file or remove it"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    return int(height), int(width)


def reduction_factor(size_hw: tuple[int, int], max_side: int = MAX_DECODE_SIDE) -> int:
    """Smallest of 1, 2, 4, 8 that brings the longer side to at most ``max_side`` (8 at most)."""
    for factor in (1, 2, 4):
        if max(size_hw) <= max_side * factor:
            return factor
    return 8


_REDUCED_FLAGS = {
    2: "IMREAD_REDUCED_COLOR_2",
    4: "IMREAD_REDUCED_COLOR_4",
    8: "IMREAD_REDUCED_COLOR_8",
}


def load_image(
    path: str | Path, max_side: int = MAX_DECODE_SIDE
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image as RGB uint8, at a reduced size when it is very large.

    Args:
        path: the image file.
        max_side: longer side above which decoding is reduced by 2, 4 or 8.

    Returns:
        ``(image_rgb [h, w, 3] uint8, original size_hw)``; EXIF orientation applied to both.

    Raises:
        DataError: the file is missing or cannot be decoded (the message names it).
    """
    try:
        size_hw: tuple[int, int] | None = image_size_hw(path)
    except DataError:  # the full decoder below says what is wrong with the file
        size_hw = None
    factor = 1 if size_hw is None else reduction_factor(size_hw, max_side)
    if factor > 1:
        bgr = cv2.imread(str(path), getattr(cv2, _REDUCED_FLAGS[factor]))
        if bgr is not None and bgr.ndim == 3:
            return np.ascontiguousarray(bgr[:, :, ::-1]), size_hw
    image = read_image_rgb(path)
    return image, (int(image.shape[0]), int(image.shape[1]))


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


@dataclass
class DecoderMessages:
    """What the native decoders (libjpeg, libpng, OpenCV) printed while one file was read."""

    text: str = ""

    def summary(self) -> str | None:
        """The messages on one line (``Premature end of JPEG file``), None when there were none;
        OpenCV's own ``[ WARN:...]`` prefixes are left out."""
        lines = []
        for line in self.text.splitlines():
            line = re.sub(r"^\[\s*WARN:[^\]]*\]\s*", "", line.strip())
            if line and line not in lines:
                lines.append(line)
        return "; ".join(lines) or None


@contextmanager
def decoder_messages() -> Iterator[DecoderMessages]:
    """Catches what native decoders write to the process's stderr (file descriptor 2).

    libjpeg prints ``Premature end of JPEG file`` for a truncated JPEG straight to the
    terminal, under any progress bar; inside this block it is kept instead, so the caller can
    report it once, as a warning naming the file. Python's own ``sys.stderr`` writes made in the
    block are caught too, so keep the block to the decoding call. Not for threads that decode
    at the same time (file descriptor 2 belongs to the whole process).
    """
    captured = DecoderMessages()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to catch
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")

