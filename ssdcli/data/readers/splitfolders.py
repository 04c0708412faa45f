"""Data sets laid out as folders: one folder per split, or YOLO ``images/`` + ``labels/``.

Split folders are ``train/``, ``valid/`` or ``val/`` (or ``validation/``) and ``test/``; each holds
images with VOC XML beside them, or images with one COCO JSON, or ``images/`` + ``labels/`` (YOLO,
class names from ``classes.txt``). The split names are the folders' names. The YOLO folder form
without a ``data.yaml`` is ``images/<split>/`` + ``labels/<split>/`` (or images straight in
``images/``: one split ``all``), class names from ``classes.txt`` (one a line, in label order).
Boxes leave as every reader's: xyxy pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssdcli.data.images import is_image_file
from ssdcli.data.readers.coco import looks_like_coco, read_coco_files
from ssdcli.data.readers.flatvoc import flat_voc_folders, read_flat_voc
from ssdcli.data.readers.yolo import read_yolo_data
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError

SPLIT_FOLDER_NAMES = ("train", "valid", "val", "validation", "test")
CLASS_FILES = ("classes.txt", "obj.names", "classes.names")


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


def read_split_folders(
    root: Path,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: Path | None = None,
) -> Manifest:
    """Reads ``root/{train,valid|val,test}/`` (see the module docstring); one format for all."""
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
        return _read_yolo_folders(root, data, class_names, decode, list(folders))
    parts = {
        split: read_flat_voc(path, split, class_names, decode, images_dir)
        for split, path in folders.items()
    }
    return merge_splits(parts, root)


def class_file(root: Path) -> Path | None:
    """The ``classes.txt`` (or darknet ``obj.names``) of a YOLO folder, if any."""
    for folder in (root, root / "labels", root.parent):
        for name in CLASS_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def read_yolo_folders(
    root: Path, class_names: Sequence[str] | None = None, decode: bool = False
) -> Manifest:
    """Reads ``images/<split>/`` + ``labels/<split>/`` (or flat ``images/``) without a YAML."""
    images = root / "images"
    subs = sorted(d.name for d in images.iterdir() if d.is_dir())
    if any(is_image_file(p) for p in images.iterdir()) or not subs:
        data = {"all": "images"}
    else:
        data = {name: f"images/{name}" for name in subs}
    return _read_yolo_folders(root, data, class_names, decode, list(data))


def _read_yolo_folders(
    root: Path,
    data: dict[str, str],
    class_names: Sequence[str] | None,
    decode: bool,
    split_keys: list[str],
) -> Manifest:
    names_file = class_file(root)
    if names_file is not None:
        lines = names_file.read_text(encoding="utf-8", errors="replace").splitlines()
        names: list[str] = [line.strip() for line in lines if line.strip()]
        origin = names_file
    elif class_names:
        names, origin = list(class_names), root / "data.yaml"
    else:
        raise DataError(
            f"{root}: YOLO labels without class names (no data.yaml, classes.txt or obj.names); "
            "fix: add classes.txt with one class name a line in label order, or pass --classes"
        )
    path = root if origin.parent != root else "."
    return read_yolo_data(
        {"path": str(path), "names": names, **data}, origin, None, class_names, decode, split_keys
    )


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
