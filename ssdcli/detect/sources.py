"""What ``ssd detect SOURCE...`` reads: files, folders, globs, videos and ``-`` (paths on stdin).

:func:`expand_sources` turns the command-line sources into :class:`SourceItem` s (images and videos)
plus :class:`SourceProblem` s for the ones that cannot be used; :func:`iter_frames` decodes one item
into :class:`Frame` s (one for an image, every ``stride``-th frame for a video). Problems never stop
the run: the caller prints one line per problem and exits 1 at the end.

Very large images are decoded at a reduced size (JPEG DCT scaling through
``cv2.IMREAD_REDUCED_COLOR_{2,4,8}``) when they are far larger than any network input, so a
20000 x 20000 photo does not need gigabytes; :attr:`Frame.size_hw` keeps the original size so that
detections are still reported in pixels of the original image.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import numpy as np

from ssdcli.data.images import IMAGE_SUFFIXES, MAX_DECODE_SIDE, decoder_messages, load_image
from ssdcli.errors import DataError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SourceItem:
    """One image or video to run detection on.

    Attributes:
        path: the file.
        kind: ``"image"`` or ``"video"``.
        rel_name: name for outputs: the file name, or the path relative to the folder source
            (``sub/photo.jpg``); outputs that would collide get a ``-2``, ``-3``... suffix.
    """

    path: Path
    kind: Literal["image", "video"]
    rel_name: str


@dataclass(frozen=True)
class SourceProblem:
    """A source that could not be used: printed as one line naming it."""

    source: str
    message: str

    def __str__(self) -> str:
        return self.message if self.source in self.message else f"{self.source}: {self.message}"


@dataclass
class Frame:
    """A decoded image (or video frame) ready for prediction.

    Attributes:
        item: where it came from.
        index: frame number in the video (0-based), None for an image.
        image_rgb: ``np.ndarray[h, w, 3]`` uint8 RGB, possibly decoded at a reduced size.
        size_hw: ``(H, W)`` of the original image (after EXIF orientation): the frame detections
            are reported in. Equal to ``image_rgb.shape[:2]`` unless decoded at a reduced size.
    """

    item: SourceItem
    index: int | None
    image_rgb: np.ndarray
    size_hw: tuple[int, int]
    decoder_warning: str | None = None

    @property
    def name(self) -> str:
        """Display name: the path, plus ``#frame`` for video frames."""
        return str(self.item.path) if self.index is None else f"{self.item.path}#{self.index}"


def _kind(path: Path) -> Literal["image", "video"]:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return (suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES) and not path.name.startswith(".")


def _folder_items(folder: Path) -> list[SourceItem]:
    items = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if _is_media(path):
                rel = path.relative_to(folder).as_posix()
                items.append(SourceItem(path, _kind(path), rel))
    return sorted(items, key=lambda item: item.rel_name)


def _expand_one(source: str) -> tuple[list[SourceItem], list[SourceProblem]]:
    path = Path(source).expanduser()
    if path.is_dir():
        items = _folder_items(path)
        if not items:
            return [], [SourceProblem(source, "folder holds no images or videos")]
        return items, []
    if path.is_file():
        return [SourceItem(path, _kind(path), path.name)], []
    if _GLOB_CHARS & set(source):
        items: list[SourceItem] = []
        for match in sorted(glob.glob(os.path.expanduser(source), recursive=True)):
            found = Path(match)
            if found.is_file() and _is_media(found):
                items.append(SourceItem(found, _kind(found), found.name))
            elif found.is_dir():
                items.extend(_folder_items(found))
        if not items:
            return [], [SourceProblem(source, "pattern matches no images or videos")]
        return items, []
    return [], [SourceProblem(source, "no such file or folder")]


def expand_sources(
    sources: Sequence[str], stdin: TextIO | None = None
) -> tuple[list[SourceItem], list[SourceProblem]]:
    """Expand command-line sources into images and videos, in order, without duplicates.

    Args:
        sources: file paths, folders (searched recursively, hidden entries skipped), glob patterns
            (``**`` allowed), or ``-`` to read one path per line from ``stdin`` (blank lines and
            lines starting with ``#`` are skipped).
        stdin: the stream ``-`` reads (the caller passes ``sys.stdin``).

    Returns:
        ``(items, problems)``: usable items, and one problem per source that gave nothing.
    """
    items: list[SourceItem] = []
    problems: list[SourceProblem] = []
    seen: set[Path] = set()
    for source in _with_stdin(sources, stdin):
        found, bad = _expand_one(source)
        problems.extend(bad)
        for item in found:
            key = item.path.resolve()
            if key not in seen:
                seen.add(key)
                items.append(item)
    return items, problems


def _with_stdin(sources: Sequence[str], stdin: TextIO | None) -> Iterator[str]:
    for source in sources:
        if source != "-":
            yield source
            continue
        if stdin is None:
            continue
        for line in stdin:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def video_info(path: Path) -> tuple[int, float, tuple[int, int]]:
    """``(frame count or 0 when unknown, fps, (H, W))`` of a video.

    Raises:
        DataError: the video cannot be opened.
    """
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(
                f"cannot open video {path}; check the file and that OpenCV can decode it"
            )
        count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        size_hw = (
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )
    finally:
        capture.release()
    return count, fps, size_hw


def iter_frames(
    item: SourceItem, stride: int = 1, max_side: int = MAX_DECODE_SIDE
) -> Iterator[Frame]:
    """Decode an item: one frame for an image, every ``stride``-th frame of a video.

    Raises:
        DataError: the image or video cannot be read (raised before any frame of an image; a video
            that cannot be opened raises before its first frame).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if item.kind == "image":
        with decoder_messages() as messages:
            try:
                image, size_hw = load_image(item.path, max_side)
            except DataError:
                if not item.path.is_file():
                    raise
                raise DataError(
                    f"{item.path} cannot be decoded (corrupt, truncated or not an image); "
                    "skipped, the other inputs go on"
                ) from None
        yield Frame(item, None, image, size_hw, messages.summary())
        return
    import cv2

    capture = cv2.VideoCapture(str(item.path))
    if not capture.isOpened():
        raise DataError(
            f"cannot open video {item.path}; check the file and that OpenCV can decode it"
        )
    try:
        index = 0
        while True:
            if index % stride:
                if not capture.grab():  # skip without decoding
                    break
                index += 1
                continue
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            yield Frame(item, index, rgb, (int(rgb.shape[0]), int(rgb.shape[1])))
            index += 1
    finally:
        capture.release()
