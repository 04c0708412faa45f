"""Data sets laid out as one folder per split, each in one of the other readers' formats.

Split folders are ``train/``, ``valid/`` or ``val/`` (or ``validation/``) and ``test/``; each holds
images with VOC XML beside them, or images with one COCO JSON, or ``images/`` + ``labels/`` (YOLO,
class names from ``classes.txt``). The split names are the folders' names. Boxes leave as every
reader's: xyxy pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssdcli.data.readers.base import SPLIT_FOLDER_NAMES, Reader, only_splits
from ssdcli.data.readers.coco import read_coco_files
from ssdcli.data.readers.coco_files import looks_like_coco
from ssdcli.data.readers.flatvoc import flat_voc_folders, read_flat_voc_split
from ssdcli.data.readers.yolo_folders import read_yolo_folder_data
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError


def split_folders(folder: Path) -> dict[str, Path]:
    """Split name -> folder, for the split-named subfolders of ``folder``."""
    return {n: folder / n for n in SPLIT_FOLDER_NAMES if (folder / n).is_dir()}


def coco_json_in(folder: Path) -> Path | None:
    """The one COCO JSON in ``folder`` (``_annotations.coco.json`` and the like), or None."""
    files = [p for p in sorted(folder.glob("*.json")) if looks_like_coco(p)]
    return files[0] if len(files) == 1 else None


def split_kind(folder: Path) -> str | None:
    """``coco``, ``voc`` or ``yolo``: what one split folder holds; None if none of them."""
    if coco_json_in(folder) is not None:
        return "coco"
    if (folder / "images").is_dir() and (folder / "labels").is_dir():
        return "yolo"
    if flat_voc_folders(folder) is not None:
        return "voc"
    return None


def split_formats(folder: Path) -> set[str]:
    """The formats the split folders of ``folder`` hold (empty: not split folders)."""
    if not folder.is_dir():
        return set()
    return {kind for path in split_folders(folder).values() if (kind := split_kind(path))}


def read_split_folders(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads ``source/{train,valid|val,test}/`` (see the module docstring); one format for all
    (:class:`ssdcli.data.readers.base.ReadFn`)."""
    return only_splits(_read_split_folders(Path(source), class_names, decode, images_dir), splits)


def _read_split_folders(
    root: Path, class_names: Sequence[str] | None, decode: bool, images_dir: str | Path | None
) -> Manifest:
    folders = split_folders(root)
    kinds = {split: split_kind(path) for split, path in folders.items()}
    unknown = [split for split, kind in kinds.items() if kind is None]
    if unknown:
        raise DataError(
            f"split folder(s) {[str(folders[s]) for s in unknown]} hold no annotations (looked "
            "for one COCO JSON, VOC XML beside the images, or images/ + labels/); fix: add them "
            "or remove the folder"
        )
    if len(set(kinds.values())) > 1:
        raise DataError(f"the split folders of {root} mix formats {kinds}; fix: use one format")
    kind = next(iter(kinds.values()))
    if kind == "coco":
        files = {split: path for split in folders if (path := coco_json_in(folders[split]))}
        return read_coco_files(files, root, None, class_names, decode, images_dir)
    if kind == "yolo":
        data = {split: f"{split}/images" for split in folders}
        return read_yolo_folder_data(root, data, class_names, decode, list(folders))
    parts = {
        split: read_flat_voc_split(path, split, class_names, decode, images_dir)
        for split, path in folders.items()
    }
    return merge_splits(parts, root)


def merge_splits(parts: dict[str, Manifest], source: Path) -> Manifest:
    """One manifest of per-split manifests: class lists united (sorted), labels re-indexed.

    Image ids are prefixed ``<split>/`` when two splits use the same id.
    """
    names = sorted(set().union(*(m.class_names for m in parts.values())))
    seen: set[str] = set()
    repeated = False
    for part in parts.values():
        ids = {r.image_id for r in part.records}
        repeated |= bool(seen & ids)
        seen |= ids
    records: list[Record] = []
    splits: dict[str, list[int]] = {}
    merged = Manifest(names, records, splits, None, str(source), "voc")
    for split, part in parts.items():
        index = np.array([names.index(n) for n in part.class_names], dtype=np.int64)
        start = len(records)
        for record in part.records:
            labels = index[record.labels] if len(record.labels) else record.labels
            image_id = f"{split}/{record.image_id}" if repeated else record.image_id
            records.append(
                Record(
                    image_id,
                    record.image_path,
                    record.size_hw,
                    record.boxes_xyxy,
                    labels,
                    record.difficult,
                    record.iscrowd,
                )
            )
        splits[split] = list(range(start, len(records)))
        merged.format = part.format
        merged.problems += part.problems
        merged.notes += [n for n in part.notes if n not in merged.notes]
    return merged


READER = Reader(
    name="split-folders",
    formats=("voc", "coco", "yolo"),
    looks_like=(
        "train/, valid/ or val/, test/ each with VOC XML, one COCO JSON or images/ + labels/"
    ),
    matches=lambda path: bool(split_formats(path)),
    read=read_split_folders,
    found_formats=split_formats,
)
