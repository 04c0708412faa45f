"""COCO JSON reader: ``instances_<split>.json`` files and their image folders.

``source`` is one JSON file or a folder holding ``annotations/*.json`` (or ``*.json``; when
``instances_*.json`` files exist only those are read). The split name is the file stem without
``instances_`` (:func:`read_coco_files` takes other names, e.g. the folder of a per-split
``_annotations.coco.json``). A ``file_name`` (subfolders allowed) is looked for in ``--images-dir``,
the JSON's folder, its ``images/``, ``<root>/<split>/``, ``<root>/images/<split>/``,
``<root>/images/`` and ``<root>/``, where ``<root>`` is the parent of an ``annotations/`` folder.
Ids may start at 0 or 1; images without annotations are kept (negatives).

Boxes: COCO ``bbox`` is ``xywh_topleft`` in continuous pixels; it is converted to xyxy here and
nowhere else. Category ids map to contiguous labels (ordered by id, or by the given class names);
the original ids are kept in ``Manifest.category_ids`` for writing COCO results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.readers.base import Reader
from ssdcli.data.readers.coco_exports import ids_repeat, parent_categories
from ssdcli.data.readers.coco_files import coco_split_name, is_coco, json_files
from ssdcli.data.readers.validate import ProblemLog, check_image, clean_objects
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); fix: save the annotation file as UTF-8"
        ) from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply; fix the annotation file") from None
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}:{error.lineno}: malformed JSON ({error.msg}, column {error.colno}); "
            "fix the annotation file"
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DataError(
            f"{path}: not a COCO instances file (needs lists 'images', "
            "'annotations' and 'categories'); fix: point at instances_*.json"
        )
    return data


def _field(item: dict, key: str, kind: type | tuple, path: Path, where: str) -> object:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}: {where} has no valid {key!r} (got {value!r}); fix the file")
    return value


def _finite(value: object) -> bool:
    """A JSON number usable as a coordinate (not a bool, NaN, infinity or a huge integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _categories(files: dict[str, tuple[Path, dict]]) -> dict[int, str]:
    """Category id -> name over all files; DataError if two files disagree."""
    found: dict[int, str] = {}
    for path, data in files.values():
        for k, cat in enumerate(data["categories"]):
            cid = _field(cat, "id", int, path, f"categories[{k}]")
            name = _field(cat, "name", str, path, f"categories[{k}]")
            if found.setdefault(cid, name) != name:
                raise DataError(
                    f"{path}: category {cid} is {name!r} here but {found[cid]!r} in "
                    "another file; fix: use one category list"
                )
    return found


def _class_list(
    categories: dict[int, str], class_names: Sequence[str] | None, source: Path
) -> list[int]:
    """Category id of each label: in ``class_names`` order if given, else by id."""
    if not class_names:
        return sorted(categories)
    by_name = {name: cid for cid, name in categories.items()}
    unknown = [name for name in class_names if name not in by_name]
    if unknown:
        raise DataError(
            f"class names {unknown} are not COCO categories of {source}; "
            f"fix: choose from {sorted(by_name)}"
        )
    return [by_name[name] for name in class_names]


def _objects_by_image(
    path: Path, data: dict, label_of: dict[int, int], names: list[str], log: ProblemLog
) -> dict[int, list[tuple[list[float], int, bool, str]]]:
    """Image id -> its objects ``(xyxy, label, iscrowd, where)``; orphans and unknowns logged."""
    image_ids = {
        _field(image, "id", int, path, f"images[{k}]") for k, image in enumerate(data["images"])
    }
    objects: dict[int, list] = {}
    for k, ann in enumerate(data["annotations"]):
        where = f"annotations[{k}]"
        image_id = _field(ann, "image_id", int, path, where)
        bbox = _field(ann, "bbox", list, path, where)
        if len(bbox) != 4 or not all(_finite(v) for v in bbox):
            raise DataError(f"{path}: {where} 'bbox' is {bbox!r}, not [x, y, w, h]; fix it")
        cid = _field(ann, "category_id", int, path, where)
        text = f"annotation id {ann.get('id')} bbox {bbox}"
        if image_id not in image_ids:
            log.add(
                "orphan_annotation",
                path,
                f"{text} names image id {image_id}, which is not in 'images'; dropped",
            )
        elif cid not in label_of:
            log.add(
                "unknown_class",
                path,
                f"{text} has category id {cid}, not in the class list {names}; dropped",
            )
        else:
            x, y, w, h = bbox  # xywh_topleft -> xyxy, the one conversion
            objects.setdefault(image_id, []).append(
                ([x, y, x + w, y + h], label_of[cid], bool(ann.get("iscrowd", 0)), text)
            )
    return objects


def read_coco(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads and validates COCO instances files (see the module docstring for the layout;
    :class:`ssdcli.data.readers.base.ReadFn`).

    Returns:
        A :class:`Manifest` with ``format="coco"``, ``category_ids`` set, ``iscrowd`` flags kept.
    """
    source = Path(source).resolve()
    if source.is_file():
        files = {coco_split_name(source): source}
    else:
        files = {path.stem.removeprefix("instances_"): path for path in json_files(source)}
    return read_coco_files(files, source, splits, class_names, decode, images_dir)


def read_coco_files(
    files: dict[str, Path],
    source: Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads COCO files given as split name -> JSON path (one file, one per split, ...).

    Each ``file_name`` (which may hold subfolders) is looked for in ``images_dir``, then beside
    the JSON, in an ``images/`` sibling and the other folders of :func:`_image_folders`. A category
    that no annotation uses and that is the ``supercategory`` of the others is not a class (it is
    noted, and left out of ``class_names``). Images without annotations are kept as negatives.
    Image ids are prefixed ``<split>/`` when two files use the same id (exports restart at 0).
    """
    loaded = {}
    for split, path in files.items():
        if not splits or split in splits:
            loaded[split] = (path, _load_json(path))
    missing = sorted(set(splits or ()) - set(loaded))
    if missing:
        raise DataError(
            f"split(s) {missing} not found in {source}; fix: name the JSON files "
            "instances_<split>.json or choose another --split"
        )
    log = ProblemLog()
    categories = _categories(loaded)
    if not class_names:
        for cid, text in parent_categories(loaded, categories).items():
            del categories[cid]
            log.note(text)
    category_ids = _class_list(categories, class_names, source)
    names = [categories[cid] for cid in category_ids]
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    prefix = ids_repeat(loaded)
    extra = [Path(images_dir).resolve()] if images_dir is not None else []
    records: list[Record] = []
    position: dict[Path, int] = {}  # an image listed by two files is one record
    split_indices: dict[str, list[int]] = {}
    for split, (path, data) in sorted(loaded.items()):
        objects = _objects_by_image(path, data, label_of, names, log)
        folders = [*extra, *_image_folders(path, split)]
        for k, image in enumerate(data["images"]):
            image_id = _field(image, "id", int, path, f"images[{k}]")
            file_name = _field(image, "file_name", str, path, f"images[{k}]")
            image_path = _locate(folders, file_name)
            if image_path not in position:
                record = _record(
                    image, image_path, objects.get(image_id, []), names, path, log, decode
                )
                if record is None:
                    continue
                if prefix:
                    record.image_id = f"{split}/{record.image_id}"
                position[image_path] = len(records)
                records.append(record)
            split_indices.setdefault(split, []).append(position[image_path])
        split_indices[split] = sorted(set(split_indices.get(split, [])))
    return Manifest(
        names, records, split_indices, category_ids, str(source), "coco", log.problems, log.notes
    )


def _image_folders(json_path: Path, split: str) -> list[Path]:
    """Folders a ``file_name`` may be relative to, most likely first."""
    base = json_path.parent.parent if json_path.parent.name == "annotations" else json_path.parent
    candidates = [
        json_path.parent,
        json_path.parent / "images",
        base / split,
        base / "images" / split,
        base / "images",
        base,
    ]
    return list(dict.fromkeys(candidates))


def _locate(folders: list[Path], file_name: str) -> Path:
    """The first ``folder / file_name`` that exists (its last component as a last try)."""
    name = file_name.replace("\\", "/")
    for candidate in [*(f / name for f in folders), *(f / Path(name).name for f in folders)]:
        if candidate.is_file():
            return candidate
    return folders[0] / name  # reported as missing by check_image


def _record(
    image: dict,
    image_path: Path,
    objects: list,
    names: list[str],
    path: Path,
    log: ProblemLog,
    decode: bool,
) -> Record | None:
    width, height = image.get("width"), image.get("height")
    annotated = (height, width) if isinstance(width, int) and isinstance(height, int) else None
    size_hw = check_image(image_path, annotated, log, path, decode)
    if size_hw is None:
        return None
    cleaned = clean_objects(
        [o[0] for o in objects], [o[1] for o in objects], [(False, o[2]) for o in objects],
        [o[3] for o in objects], size_hw, names, path, log,
    )  # fmt: skip
    return Record.make(str(image["id"]), image_path, size_hw, *cleaned)


READER = Reader(
    name="coco",
    formats=("coco",),
    looks_like="COCO *.json in the folder or in annotations/",
    matches=is_coco,
    read=read_coco,
    reads_file="a COCO *.json",
)
