"""Where a data set's COCO JSON files are, which split each holds, and whether a path is COCO.

Cheap checks for layout detection (the head of a file tells), apart from the parsing in
:mod:`ssdcli.data.readers.coco`.
"""

from __future__ import annotations

from pathlib import Path

from ssdcli.data.readers.base import SPLIT_FOLDER_NAMES, is_manifest_file
from ssdcli.data.records import MANIFEST_NAME
from ssdcli.errors import DataError


def looks_like_coco(path: Path) -> bool:
    """Whether a JSON file's head names COCO's ``images`` or ``categories`` list (cheap check).

    Exporters write ``info``, ``licenses``, then the lists, so the first 64 kB tell; layout
    detection uses it to pass over other JSON files (tool settings, metadata).
    """
    try:
        with path.open("rb") as file:
            head = file.read(65536)
    except OSError:
        return False
    return b'"images"' in head or b'"categories"' in head


def json_files(source: Path) -> list[Path]:
    """The COCO files of a folder: ``annotations/instances_*.json`` (or ``*.json``), or of the
    folder itself."""
    if not source.is_dir():
        raise DataError(f"COCO source {source} does not exist; fix: check the path")
    folder = source / "annotations" if (source / "annotations").is_dir() else source
    files = sorted(folder.glob("instances_*.json")) or sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"no COCO JSON file in {folder}; fix: point at instances_<split>.json")
    return files


def coco_split_name(json_path: Path) -> str:
    """The split a COCO JSON holds: ``instances_<split>``, else a split-named folder, else all."""
    if json_path.stem.startswith("instances_"):
        return json_path.stem.removeprefix("instances_")
    if json_path.parent.name in SPLIT_FOLDER_NAMES:
        return json_path.parent.name
    return json_path.stem if json_path.stem in SPLIT_FOLDER_NAMES else "all"


def coco_files_in(folder: Path) -> list[Path]:
    """The COCO JSON files of a folder (in it, or in its ``annotations/``); manifests are not."""
    look = folder / "annotations" if (folder / "annotations").is_dir() else folder
    return sorted(p for p in look.glob("*.json") if p.name != MANIFEST_NAME and looks_like_coco(p))


def is_coco(path: Path) -> bool:
    """A folder holding COCO JSON files, or a JSON file that is not a ``manifest.json``."""
    if path.is_dir():
        return bool(coco_files_in(path))
    return path.is_file() and path.suffix.lower() == ".json" and not is_manifest_file(path)
