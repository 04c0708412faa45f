"""A ``manifest.json`` written by ``ssd prepare-data``: read back as it was written.

The manifest is already validated and split, so :data:`READER` is ``prepared``: ``open_dataset``
keeps it as it is (no re-splitting), and it answers to no ``--format`` (a data set's own files
win: it is the last layout tried).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.readers.base import Reader, is_manifest_file, only_splits
from ssdcli.data.records import MANIFEST_NAME, Manifest


def read_manifest(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Loads a ``manifest.json`` (``source``: the file or its folder), cut to ``splits``
    (:class:`ssdcli.data.readers.base.ReadFn`). ``class_names``, ``decode`` and ``images_dir``
    are not used: the manifest holds its classes, sizes and image paths."""
    path = Path(source)
    return only_splits(Manifest.load(path / MANIFEST_NAME if path.is_dir() else path), splits)


def is_manifest(path: Path) -> bool:
    """A folder holding a ``manifest.json``, or a JSON file that starts as a manifest does."""
    if path.is_dir():
        return (path / MANIFEST_NAME).is_file()
    return path.is_file() and path.suffix.lower() == ".json" and is_manifest_file(path)


READER = Reader(
    name="manifest",
    formats=(),
    looks_like="manifest.json",
    matches=is_manifest,
    read=read_manifest,
    reads_file="a manifest.json",
    prepared=True,
)
