"""COCO JSON reader: ``instances_<split>.json`` files and their image folders.

``source`` is one JSON file or a folder holding ``annotations/*.json`` (or ``*.json``; when
``instances_*.json`` files exist only those are read). The split name is the file stem without
``instances_``. Images are looked for in ``<root>/<split>/``, ``<root>/images/<split>/``,
``<root>/images/``, ``<root>/`` and the JSON's own folder, where ``<root>`` is the parent of an
``annotations/`` folder.

Boxes: COCO ``bbox`` is ``xywh_topleft`` in continuous pixels; it is converted to xyxy here and
nowhere else. Category ids map to contiguous labels (ordered by id, or by the given class names);
the original ids are kept in ``Manifest.category_ids`` for writing COCO results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.records import Manifest, Record
from ssdcli.data.validate import ProblemLog, check_image, clean_objects
from ssdcli.errors import DataError


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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


def _json_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise DataError(f"COCO source {source} does not exist; fix: check the path")
    folder = source / "annotations" if (source / "annotations").is_dir() else source
    files = sorted(folder.glob("instances_*.json")) or sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"no COCO JSON file in {folder}; fix: point at instances_<split>.json")
    return files


def _image_dir(json_path: Path, split: str, first_file: str | None) -> Path:
    base = json_path.parent.parent if json_path.parent.name == "annotations" else json_path.parent
    candidates = [base / split, base / "images" / split, base / "images", base, json_path.parent]
    for folder in candidates:
        if first_file is not None and (folder / first_file).is_file():
            return folder
    return next((folder for folder in candidates if folder.is_dir()), base)


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


def read_coco(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
) -> Manifest:
    """Reads and validates COCO instances files (see the module docstring for the layout).

    Returns:
        A :class:`Manifest` with ``format="coco"``, ``category_ids`` set, ``iscrowd`` flags kept.
    """
    source = Path(source).resolve()
    files = {}
    for path in _json_files(source):
        split = path.stem.removeprefix("instances_")
        if not splits or split in splits:
            files[split] = (path, _load_json(path))
    missing = sorted(set(splits or ()) - set(files))
    if missing:
        raise DataError(
            f"split(s) {missing} not found in {source}; fix: name the JSON files "
            "instances_<split>.json or choose another --split"
        )
    categories = _categories(files)
    if class_names:
        by_name = {name: cid for cid, name in categories.items()}
        unknown = [name for name in class_names if name not in by_name]
        if unknown:
            raise DataError(
                f"class names {unknown} are not COCO categories of {source}; "
                f"fix: choose from {sorted(by_name)}"
            )
        category_ids = [by_name[name] for name in class_names]
    else:
        category_ids = sorted(categories)
    names = [categories[cid] for cid in category_ids]
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    log = ProblemLog()
    records: list[Record] = []
    position: dict[Path, int] = {}
    split_indices: dict[str, list[int]] = {}
    for split, (path, data) in sorted(files.items()):
        images = data["images"]
        first = images[0].get("file_name") if images and isinstance(images[0], dict) else None
        folder = _image_dir(path, split, first)
        objects: dict[int, list] = {}
        image_ids = set()
        for k, image in enumerate(images):
            image_ids.add(_field(image, "id", int, path, f"images[{k}]"))
        for k, ann in enumerate(data["annotations"]):
            where = f"annotations[{k}]"
            image_id = _field(ann, "image_id", int, path, where)
            bbox = _field(ann, "bbox", list, path, where)
            if len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
                raise DataError(f"{path}: {where} 'bbox' is {bbox!r}, not [x, y, w, h]; fix it")
            text = f"annotation id {ann.get('id')} bbox {bbox}"
            cid = _field(ann, "category_id", int, path, where)
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
        indices = []
        for k, image in enumerate(images):
            image_id = image["id"]
            file_name = _field(image, "file_name", str, path, f"images[{k}]")
            width, height = image.get("width"), image.get("height")
            annotated = (
                (height, width) if isinstance(width, int) and isinstance(height, int) else None
            )
            image_path = folder / file_name
            if image_path in position:
                indices.append(position[image_path])
                continue
            size_hw = check_image(image_path, annotated, log, path, decode)
            if size_hw is None:
                continue
            objs = objects.get(image_id, [])
            cleaned = clean_objects(
                [o[0] for o in objs],
                [o[1] for o in objs],
                [(False, o[2]) for o in objs],
                [o[3] for o in objs],
                size_hw,
                names,
                path,
                log,
            )
            position[image_path] = len(records)
            indices.append(len(records))
            records.append(Record.make(str(image_id), image_path, size_hw, *cleaned))
        split_indices[split] = sorted(set(indices))
    return Manifest(names, records, split_indices, category_ids, str(source), "coco", log.problems)
