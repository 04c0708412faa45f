"""Validation shared by every reader: image checks, box cleaning, and the problem log.

Readers parse their own file format, then hand each image's raw objects to :func:`clean_objects`,
which applies the same rules everywhere (see ``PROBLEM_KINDS`` in :mod:`ssdcli.data.records`):
zero/negative-area boxes are dropped, out-of-bounds boxes clipped, identical boxes de-duplicated,
near-identical boxes (IoU >= 0.9, same class) reported and kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssdcli.data.images import image_size_hw, read_image_rgb
from ssdcli.data.records import PROBLEM_KINDS, Problem
from ssdcli.errors import DataError

NEAR_DUPLICATE_IOU = 0.9


class ProblemLog:
    """Collects :class:`Problem` findings, and notes on how the data was read, in order."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        """Records one line on how the data was read (not a problem: --strict ignores it)."""
        if message not in self.notes:
            self.notes.append(message)

    def add(self, kind: str, file: str | Path, message: str) -> None:
        assert kind in PROBLEM_KINDS, kind
        self.problems.append(Problem(kind, str(file), message))

    def counts(self) -> Counter[str]:
        return Counter(p.kind for p in self.problems)


def check_image(
    path: Path,
    annotated_hw: tuple[int, int] | None,
    log: ProblemLog,
    annotation_file: str | Path,
    decode: bool = False,
) -> tuple[int, int] | None:
    """Returns the real size ``(H, W)`` of an image, or None (problem logged) if it is unusable.

    Args:
        path: image file.
        annotated_hw: the size the annotation declares, or None if it declares none.
        log: where problems go.
        annotation_file: file named in a size-mismatch problem.
        decode: decode every pixel (finds truncated files) instead of reading the header only.
    """
    if not path.is_file():
        log.add("missing_image", path, f"image not found (listed by {annotation_file}); skipped")
        return None
    try:
        size_hw = read_image_rgb(path).shape[:2] if decode else image_size_hw(path)
    except DataError as error:
        log.add("unreadable_image", path, f"{error}; skipped")
        return None
    size_hw = (int(size_hw[0]), int(size_hw[1]))
    if annotated_hw is not None and tuple(annotated_hw) != size_hw:
        log.add(
            "size_mismatch",
            annotation_file,
            f"annotation says HxW {annotated_hw[0]}x{annotated_hw[1]} but {path.name} is "
            f"{size_hw[0]}x{size_hw[1]}; real size used",
        )
    return size_hw


def _fmt(box: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def clean_objects(
    boxes_xyxy: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[int],
    flags: Sequence[tuple[bool, bool]],
    where: Sequence[str],
    size_hw: tuple[int, int],
    class_names: Sequence[str],
    file: str | Path,
    log: ProblemLog,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Applies the box rules to one image's objects.

    Args:
        boxes_xyxy: ``[G, 4]`` xyxy in pixels of the image (converted from the file's units).
        labels: ``[G]`` class indices ``0..C-1``.
        flags: ``[G]`` pairs ``(difficult, iscrowd)``.
        where: ``[G]`` each object's location and box in its file's own units, for messages
            (``"line 42 box (12, 30, 80, 95)"``, ``"annotation id 7 bbox [1, 2, 30, 40]"``).
        size_hw: real image size.
        class_names: for messages.
        file: annotation file named in problems.
        log: where problems go.

    Returns:
        ``(boxes_xyxy float32 [G', 4], labels int64 [G'], difficult bool [G'], iscrowd bool [G'])``.
    """
    height, width = size_hw
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    keep: list[int] = []
    cleaned = boxes.copy()
    for i, box in enumerate(boxes):
        what = f"{where[i]} {class_names[labels[i]]}"
        if box[2] <= box[0] or box[3] <= box[1]:
            log.add("zero_area", file, f"{what} has zero or negative area; dropped")
            continue
        clipped = np.clip(box, 0.0, [width, height, width, height])
        if not np.array_equal(clipped, box):
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                log.add(
                    "out_of_bounds",
                    file,
                    f"{what} lies outside the {width}x{height} image; dropped",
                )
                continue
            log.add(
                "out_of_bounds",
                file,
                f"{what} exceeds the {width}x{height} image; clipped to pixel xyxy {_fmt(clipped)}",
            )
        cleaned[i] = clipped
        keep.append(i)
    keep = _drop_duplicates(cleaned, np.asarray(labels), keep, where, class_names, file, log)
    labels_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
    flags_arr = np.asarray(flags, dtype=bool).reshape(-1, 2)
    idx = np.asarray(keep, dtype=np.int64)
    return (
        cleaned[idx].astype(np.float32).reshape(-1, 4),
        labels_arr[idx] if len(labels_arr) else np.zeros(0, np.int64),
        flags_arr[idx, 0] if len(flags_arr) else np.zeros(0, bool),
        flags_arr[idx, 1] if len(flags_arr) else np.zeros(0, bool),
    )


def _drop_duplicates(
    boxes: np.ndarray,
    labels: np.ndarray,
    keep: list[int],
    where: Sequence[str],
    class_names: Sequence[str],
    file: str | Path,
    log: ProblemLog,
) -> list[int]:
    """Drops exact copies (same class, same box) and reports near-copies (IoU >= 0.9)."""
    if len(keep) < 2:
        return keep
    kept: list[int] = []
    for i in keep:
        same = [j for j in kept if labels[j] == labels[i]]
        if not same:
            kept.append(i)
            continue
        ious = _iou_one_to_many(boxes[i], boxes[same])
        best = int(np.argmax(ious))
        other = same[best]
        name = class_names[labels[i]]
        if np.array_equal(boxes[i], boxes[other]):
            log.add("duplicate", file, f"{where[i]} {name} repeats {where[other]}; dropped")
            continue
        if ious[best] >= NEAR_DUPLICATE_IOU:
            log.add(
                "near_duplicate",
                file,
                f"{where[i]} {name} overlaps {where[other]} with IoU {ious[best]:.2f}; kept",
            )
        kept.append(i)
    return kept


def _iou_one_to_many(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], others[:, :2])
    rb = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return inter / (area + areas - inter)


def resolve_class_names(found: Sequence[str], given: Sequence[str] | None) -> list[str]:
    """The class list: ``given`` (from the recipe or ``--classes``) or the sorted names found."""
    if given:
        if len(set(given)) != len(given):
            raise DataError(f"class names {list(given)} contain duplicates; fix: list each once")
        return list(given)
    return sorted(set(found))
