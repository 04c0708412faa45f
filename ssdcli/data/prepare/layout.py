"""The one way into a data set as it comes: detect its layout and format, read it, split it.

:func:`open_dataset` takes a folder in any layout, a ``data.yaml``, a COCO JSON or a
``manifest.json`` and returns a :class:`Manifest` (boxes xyxy pixels, see
:class:`ssdcli.data.records.Record`). The layouts and their readers are the table of
:mod:`ssdcli.data.readers.registry`, tried in its order (``yolo-yaml``, ``voc-devkit``,
``split-folders``, ``coco``, ``voc-flat``, ``yolo-folders``, ``manifest``); the first whose
``matches`` accepts the path (and that reads the ``--format`` asked for) reads it.

A data set without splits of its own (or with one) gets train/val/test made here
(:mod:`ssdcli.data.prepare.splits`), the same for the same data and seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.images import is_image_file
from ssdcli.data.prepare.splits import (
    add_trainval,
    eval_split_note,
    make_splits,
    needs_splits,
    shared_pictures_note,
)
from ssdcli.data.readers.base import Reader, keep_splits
from ssdcli.data.readers.registry import formats, readers
from ssdcli.data.records import MANIFEST_NAME, Manifest
from ssdcli.errors import DataError, UsageError


def detect_layout(path: Path, format: str | None = None) -> Reader:
    """The first reader of the registry that ``path`` (a folder or a file) matches, among those
    reading ``format`` when it is given.

    Raises:
        UsageError: none fits; the message lists every layout looked for (for a file: the files
            that can be read).
    """
    for reader in readers():
        if format is not None and format not in reader.formats:
            continue
        if reader.matches(path) and (format is None or format in reader.formats_at(path)):
            return reader
    if path.is_file():
        raise UsageError(_no_reader_for_file(path))
    raise UsageError(_no_layout_message(path, format))


def _no_reader_for_file(path: Path) -> str:
    kinds = [reader.reads_file for reader in readers() if reader.reads_file]
    expected = " or ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
    return (
        f"cannot read the file {path} as a data set: expected {expected}; fix: point at one of "
        "them or at the data set's folder"
    )


def _no_layout_message(path: Path, format: str | None) -> str:
    """Why no layout fits, in the order a user checks: images without any labels; data of
    another format than ``--format``; else what was looked for."""
    images = _count_images(path)
    annotations = any(
        p.suffix.lower() in (".xml", ".json", ".txt", ".yaml") and p.name != MANIFEST_NAME
        for p in _shallow_files(path)
    )
    if images and not annotations:
        return (
            f"{path}: {images} image{'s' if images != 1 else ''} found but no annotations "
            "(no VOC .xml, COCO .json, YOLO labels/*.txt or data.yaml); fix: export the labels "
            "with the images, or point at the folder that holds them"
        )
    if format is not None:
        looked = "; ".join(reader.looks_like for reader in readers() if format in reader.formats)
        other = next((reader for reader in readers() if reader.matches(path)), None)
        if other is not None and other.formats:
            kinds = sorted(other.found_formats(path)) if other.found_formats else []
            # "split folders of coco data": the layout's name in words, and what it holds
            what = other.name.replace("-", " ")
            found = f"{what} of {kinds[0]} data" if kinds else other.looks_like
            return (
                f"{path} is not {format} data (looked for {looked}): it looks like {found}; "
                f"fix: use --format {kinds[0] if kinds else other.formats[0]} (data.format in a "
                "recipe) or leave it out"
            )
        return (
            f"no {format} data set in {path}: looked for {looked}; fix: point at the data set's "
            "folder or file"
        )
    looked = "; ".join(reader.looks_like for reader in readers())
    known = formats()
    either = ", ".join(known[:-1]) + f" or {known[-1]}" if len(known) > 1 else known[0]
    return (
        f"cannot tell the layout of {path}: looked for {looked}; fix: point at the data set's "
        f"folder or file, or add --format {either} (data.format in a recipe)"
    )


def _shallow_files(folder: Path, depth: int = 2) -> list[Path]:
    """Files in ``folder`` and its sub-folders down to ``depth`` levels (hidden ones skipped)."""
    found: list[Path] = []
    level = [folder]
    for _ in range(depth + 1):
        below: list[Path] = []
        for current in level:
            for entry in sorted(current.iterdir()):
                if entry.name.startswith("."):
                    continue
                (below if entry.is_dir() else found).append(entry)
        level = below
    return found


def _count_images(folder: Path) -> int:
    return sum(1 for p in _shallow_files(folder) if is_image_file(p))


def open_dataset(
    path: str | Path,
    format: str | None = None,
    images_dir: str | Path | None = None,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    check_duplicates: bool = False,
) -> Manifest:
    """Reads a data set in any supported layout into a validated :class:`Manifest`.

    Args:
        path: a data set folder, a ``data.yaml``, a COCO JSON or a ``manifest.json``.
        format: ``voc``, ``coco`` or ``yolo`` to restrict detection to that format.
        images_dir: folder holding the images when the annotations do not say (COCO, flat VOC).
        splits: split names to keep (``val`` also finds ``valid``); all if None.
        class_names: class list in label order; other classes become problems.
        decode: fully decode every image instead of reading headers.
        val, test, seed: fractions and seed of the splits made when the data has none.
        check_duplicates: note groups of the same picture that the data's own splits divide
            (decodes every image; ``prepare-data`` does it).

    Returns:
        The manifest, with ``trainval`` added when it has train and val, and notes saying how
        the data was read (a parent category dropped, a path fixed, splits made).

    Raises:
        DataError: the path does not exist or a file in it is malformed (message names it).
        UsageError: ``format`` is unknown, or no layout fits (message lists what was looked for).
    """
    path = Path(path).resolve()
    if format is not None and format not in formats():
        raise UsageError(f"--format {format!r}: use one of {', '.join(formats())}")
    if not path.exists():
        raise DataError(f"data set {path} does not exist; fix: check the path")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise DataError(f"images folder {images_dir} does not exist; fix: check --images-dir")
    reader = detect_layout(path, format)
    images = Path(images_dir) if images_dir is not None else None
    manifest = reader.read(path, None, class_names, decode, images)
    if reader.prepared:
        return _prepared(manifest, splits, path)
    if needs_splits(manifest) and not _single_named_split(manifest, splits):
        make_splits(manifest, val, test, seed)
    elif check_duplicates and (shared := shared_pictures_note(manifest)):
        manifest.notes.append(shared)
    add_trainval(manifest.splits)
    note = eval_split_note(manifest.splits)
    if note:
        manifest.notes.append(note)
    return _prepared(manifest, splits, path)


def _prepared(manifest: Manifest, splits: Sequence[str] | None, path: Path) -> Manifest:
    """A manifest as written (never re-split), cut down to ``splits`` when given.

    Raises:
        DataError: nothing was read, or a split asked for lists no image (names the list file).
    """
    source = Path(manifest.source or path)
    for split in splits or ():
        found = manifest.resolve_split(split)
        if (found is None or not manifest.splits[found]) and _empty_list(source, split):
            raise DataError(f"split {split!r} of {source} is empty: {_empty_list(source, split)}")
    kept = keep_splits(manifest, splits) if splits else manifest
    if not kept.records:
        kinds = Counter(problem.kind for problem in manifest.problems)
        found = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
        first = f", first: {manifest.problems[0].message}" if manifest.problems else ""
        raise DataError(
            f"no image was read from {_listing_file(path)} ({found or 'nothing listed'}{first}); "
            "fix: check that the annotations name images that exist (--images-dir for COCO, VOC)"
        )
    return kept


def _listing_file(path: Path) -> Path:
    """The file that lists a data set's images: ``data.yaml`` of a YOLO folder, else ``path``."""
    return path / "data.yaml" if path.is_dir() and (path / "data.yaml").is_file() else path


def _empty_list(source: Path, split: str) -> str | None:
    """The VOC list file that names a split but no image, with the fix; None when there is no
    such file (a split that does not exist at all gets the split list from ``keep_splits``)."""
    folder = source if source.is_dir() else source.parent
    for listing in sorted(folder.glob(f"**/ImageSets/Main/{split}.txt")):
        if not listing.read_text(errors="replace").strip():
            return f"{listing} lists no image; fix: list image ids in it, or choose another --split"
    return None


def _single_named_split(manifest: Manifest, wanted: Sequence[str] | None) -> bool:
    """Whether the one split there is is the one asked for (then it is not re-split)."""
    return bool(wanted) and list(manifest.splits) == list(wanted)
