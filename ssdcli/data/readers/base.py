"""What every format reader is: :class:`Reader`, the one signature of ``read``, shared helpers.

A reader module defines one :class:`Reader` (named ``READER``) and is listed once in
:mod:`ssdcli.data.readers.registry`; layout detection, ``open_dataset`` and ``read_dataset``
find it there. Every reader's ``read`` takes the same arguments in the same order
(:class:`ReadFn`) and returns a validated :class:`Manifest` with boxes in xyxy pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ssdcli.data.records import Manifest, resolve_split
from ssdcli.errors import DataError

# The folder names that name a split (split folders, COCO files in them, VOC split checks).
SPLIT_FOLDER_NAMES = ("train", "valid", "val", "validation", "test")


class ReadFn(Protocol):
    """The signature of every reader's ``read``; the names and order are the same for all.

    Args:
        source: the path :attr:`Reader.matches` accepted (a folder, or a file for readers of
            files such as ``data.yaml`` or a COCO JSON).
        splits: split names to keep (``val`` also finds ``valid``); every split if None.
        class_names: class list in label order; objects of other classes become problems.
        decode: fully decode every image instead of reading its header.
        images_dir: folder searched for the images first, for formats whose annotations name
            images without saying where they are (COCO, flat VOC); readers whose layout fixes
            the images' folder (VOC devkit, YOLO) do not use it.
    """

    def __call__(
        self,
        source: Path,
        splits: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        decode: bool = False,
        images_dir: Path | None = None,
    ) -> Manifest: ...


@dataclass(frozen=True)
class Reader:
    """A data-set layout and how to read it.

    Attributes:
        name: the layout's name (``voc-devkit``, ``coco``, ...), shown in reports and errors.
        formats: the ``--format`` / ``data.format`` values it answers to; empty for a layout
            that no format selects (a ``manifest.json``, read only when no format is given).
        looks_like: what it looks for, for the error that lists every layout tried.
        matches: whether a path (folder, or file) is in this layout; cheap (no full parse).
        read: reads a matched path (:class:`ReadFn`).
        found_formats: for a layout that holds any of several formats (split folders), the
            formats present at a matched path; None means every one of ``formats``.
        reads_file: what file it reads when given one (``a COCO *.json``), for the error on a
            file no reader takes; None for readers of folders only.
        prepared: the data comes split and validated (a manifest): it is kept as written,
            never re-split.
    """

    name: str
    formats: tuple[str, ...]
    looks_like: str
    matches: Callable[[Path], bool]
    read: ReadFn
    found_formats: Callable[[Path], set[str]] | None = None
    reads_file: str | None = None
    prepared: bool = False

    def formats_at(self, path: Path) -> set[str]:
        """The formats of the data at ``path`` (a path this reader matches)."""
        return self.found_formats(path) if self.found_formats else set(self.formats)


def is_manifest_file(path: Path) -> bool:
    """Whether a JSON file is a ``manifest.json``: a manifest starts with its version (written
    first, so the head of the file tells)."""
    with path.open("rb") as file:
        return b'"manifest_version"' in file.read(256)


def keep_splits(manifest: Manifest, wanted: Sequence[str]) -> Manifest:
    """``manifest`` with only the splits ``wanted`` (``val`` finds ``valid``) and their records.

    Raises:
        DataError: a split asked for is not in the data set (the message lists those there).
    """
    names = []
    for name in wanted:
        found = resolve_split(manifest.splits, name)
        if found is None:
            known = ", ".join(sorted(manifest.splits)) or "none"
            raise DataError(
                f"split {name!r} is not in {manifest.source} (splits: {known}); "
                "fix: choose another --split"
            )
        names.append(found)
    keep = sorted({i for name in names for i in manifest.splits[name]})
    new_index = {old: new for new, old in enumerate(keep)}
    manifest.records = [manifest.records[i] for i in keep]
    manifest.splits = {name: [new_index[i] for i in manifest.splits[name]] for name in names}
    return manifest


def only_splits(manifest: Manifest, splits: Sequence[str] | None) -> Manifest:
    """:func:`keep_splits` when ``splits`` are given, else ``manifest`` as it is (for readers
    whose layout cannot read one split alone)."""
    return keep_splits(manifest, splits) if splits else manifest
