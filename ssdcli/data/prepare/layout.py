"""The one way into a data set as it comes: detect its layout and format, read it, split it.

:func:`open_dataset` takes a folder in any layout below, a ``data.yaml``, a COCO JSON or a
``manifest.json`` and returns a :class:`Manifest` (boxes xyxy pixels, see
:class:`ssdcli.data.records.Record`). Layouts, tried in this order (:data:`LAYOUTS`):

* ``yolo-yaml``: ``data.yaml`` (Ultralytics), :mod:`ssdcli.data.readers.yolo`;
* ``voc-devkit``: ``Annotations/`` + ``JPEGImages/`` (``ImageSets/Main`` optional), or
  ``VOCdevkit/VOC20xx``, :mod:`ssdcli.data.readers.voc`;
* ``split-folders``: ``train/``, ``valid/`` or ``val/``, ``test/``, each VOC, COCO or YOLO,
  :mod:`ssdcli.data.readers.splitfolders`;
* ``coco``: ``annotations/*.json`` or ``*.json`` in the folder, :mod:`ssdcli.data.readers.coco`;
* ``voc-flat``: XML beside the images, or ``annotations/`` + ``images/``,
  :mod:`ssdcli.data.readers.flatvoc`;
* ``yolo-folders``: ``images/`` + ``labels/`` with ``classes.txt``;
* ``manifest``: a ``manifest.json`` written by ``ssd prepare-data``.

A data set without splits of its own (or with one) gets train/val/test made here
(:mod:`ssdcli.data.prepare.splits`), the same for the same data and seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ssdcli.data.images import is_image_file
from ssdcli.data.prepare.splits import (
    add_trainval,
    eval_split_note,
    make_splits,
    needs_splits,
    shared_pictures_note,
)
from ssdcli.data.readers.coco import looks_like_coco, read_coco, read_coco_files
from ssdcli.data.readers.flatvoc import flat_voc_folders, read_flat_voc
from ssdcli.data.readers.splitfolders import (
    SPLIT_FOLDER_NAMES,
    read_split_folders,
    read_yolo_folders,
    split_folders,
    split_kind,
)
from ssdcli.data.readers.voc import read_voc
from ssdcli.data.readers.yolo import read_yolo
from ssdcli.data.records import MANIFEST_NAME, Manifest, resolve_split
from ssdcli.errors import DataError, UsageError

FORMATS = ("voc", "coco", "yolo")


@dataclass(frozen=True)
class Layout:
    """A layout: its name, its format(s), what it looks like (for the error), how to spot it."""

    name: str
    formats: tuple[str, ...]
    looks_like: str
    matches: Callable[[Path], bool]


def _is_devkit(folder: Path) -> bool:
    if (folder / "Annotations").is_dir() and (folder / "JPEGImages").is_dir():
        return True
    base = folder / "VOCdevkit" if (folder / "VOCdevkit").is_dir() else folder
    return any(
        (d / "Annotations").is_dir() and (d / "JPEGImages").is_dir()
        for d in base.iterdir()
        if d.is_dir() and d.name not in SPLIT_FOLDER_NAMES
    )


def _split_formats(folder: Path) -> set[str]:
    return {kind for path in split_folders(folder).values() if (kind := split_kind(path))}


def _coco_files(folder: Path) -> list[Path]:
    look = folder / "annotations" if (folder / "annotations").is_dir() else folder
    return sorted(p for p in look.glob("*.json") if p.name != MANIFEST_NAME and looks_like_coco(p))


LAYOUTS = (
    Layout("yolo-yaml", ("yolo",), "data.yaml", lambda f: (f / "data.yaml").is_file()),
    Layout(
        "voc-devkit",
        ("voc",),
        "Annotations/ + JPEGImages/ (VOC devkit, also in VOCdevkit/VOC20xx/)",
        _is_devkit,
    ),
    Layout(
        "split-folders",
        FORMATS,
        "train/, valid/ or val/, test/ each with VOC XML, one COCO JSON or images/ + labels/",
        lambda f: bool(_split_formats(f)),
    ),
    Layout("coco", ("coco",), "COCO *.json in the folder or in annotations/", _coco_files),
    Layout(
        "voc-flat",
        ("voc",),
        "VOC *.xml beside the images, or annotations/ + images/",
        lambda f: flat_voc_folders(f) is not None,
    ),
    Layout(
        "yolo-folders",
        ("yolo",),
        "images/ + labels/ (YOLO, names in classes.txt)",
        lambda f: (f / "images").is_dir() and (f / "labels").is_dir(),
    ),
    Layout("manifest", (), "manifest.json", lambda f: (f / MANIFEST_NAME).is_file()),
)


def detect_layout(path: Path, format: str | None = None) -> Layout:
    """The first layout of :data:`LAYOUTS` that ``path`` (a folder) has, in ``format`` if given.

    Raises:
        UsageError: none fits; the message lists every layout looked for.
    """
    for layout in LAYOUTS:
        if format is not None and format not in layout.formats:
            continue
        if layout.matches(path) and (
            layout.name != "split-folders" or format is None or format in _split_formats(path)
        ):
            return layout
    raise UsageError(_no_layout_message(path, format))


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
        looked = "; ".join(layout.looks_like for layout in LAYOUTS if format in layout.formats)
        other = next((layout for layout in LAYOUTS if layout.matches(path)), None)
        if other is not None and other.formats:
            kinds = sorted(_split_formats(path)) if other.name == "split-folders" else []
            found = f"split folders of {kinds[0]} data" if kinds else other.looks_like
            return (
                f"{path} is not {format} data (looked for {looked}): it looks like {found}; "
                f"fix: use --format {kinds[0] if kinds else other.formats[0]} (data.format in a "
                "recipe) or leave it out"
            )
        return (
            f"no {format} data set in {path}: looked for {looked}; fix: point at the data set's "
            "folder or file"
        )
    looked = "; ".join(layout.looks_like for layout in LAYOUTS)
    return (
        f"cannot tell the layout of {path}: looked for {looked}; fix: point at the data set's "
        "folder or file, or add --format voc, coco or yolo (data.format in a recipe)"
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
    if format is not None and format not in FORMATS:
        raise UsageError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"data set {path} does not exist; fix: check the path")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise DataError(f"images folder {images_dir} does not exist; fix: check --images-dir")
    if path.is_file() and path.suffix.lower() == ".json" and format is None and _is_manifest(path):
        return _prepared(Manifest.load(path), splits, path)
    if path.is_dir() and detect_layout(path, format).name == "manifest":
        return _prepared(Manifest.load(path / MANIFEST_NAME), splits, path)
    manifest = _read(path, format, images_dir, class_names, decode)
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


def _read(
    path: Path,
    format: str | None,
    images_dir: str | Path | None,
    class_names: Sequence[str] | None,
    decode: bool,
) -> Manifest:
    if path.is_file():
        return _read_file(path, format, images_dir, class_names, decode)
    images = Path(images_dir) if images_dir is not None else None
    layout = detect_layout(path, format)
    if layout.name == "yolo-yaml":
        return read_yolo(path / "data.yaml", None, class_names, decode)
    if layout.name == "voc-devkit":
        return read_voc(path, None, class_names, decode)
    if layout.name == "split-folders":
        return read_split_folders(path, class_names, decode, images)
    if layout.name == "coco":
        return read_coco(path, None, class_names, decode, images)
    if layout.name == "voc-flat":
        return read_flat_voc(path, "all", class_names, decode, images)
    return read_yolo_folders(path, class_names, decode)


def _read_file(
    path: Path,
    format: str | None,
    images_dir: str | Path | None,
    class_names: Sequence[str] | None,
    decode: bool,
) -> Manifest:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml") and format in (None, "yolo"):
        return read_yolo(path, None, class_names, decode)
    if suffix == ".json" and format in (None, "coco"):
        return read_coco_files(
            {coco_split_name(path): path}, path, None, class_names, decode, images_dir
        )
    raise UsageError(
        f"cannot read the file {path} as a data set: expected a data.yaml (YOLO), a COCO "
        "*.json or a manifest.json; fix: point at one of them or at the data set's folder"
    )


def _is_manifest(path: Path) -> bool:
    """A manifest starts with its version (written first, so the head of the file tells)."""
    with path.open("rb") as file:
        return b'"manifest_version"' in file.read(256)


def coco_split_name(json_path: Path) -> str:
    """The split a COCO JSON holds: ``instances_<split>``, else a split-named folder, else all."""
    if json_path.stem.startswith("instances_"):
        return json_path.stem.removeprefix("instances_")
    if json_path.parent.name in SPLIT_FOLDER_NAMES:
        return json_path.parent.name
    return json_path.stem if json_path.stem in SPLIT_FOLDER_NAMES else "all"


def keep_splits(manifest: Manifest, wanted: Sequence[str]) -> Manifest:
    """``manifest`` with only the splits ``wanted`` (``val`` finds ``valid``) and their records."""
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
