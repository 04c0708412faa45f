"""The one in-memory and on-disk form of a data set: `Record`, `Problem` and `Manifest`.

Every reader (VOC, COCO, YOLO, synthetic) produces a :class:`Manifest`; training and evaluation read
only this form. On disk it is one JSON file (``manifest.json``) written atomically (temp file in the
same folder, then ``os.replace``). The file holds no timestamps and is written in a fixed order, so
the same input gives a byte-identical file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssdcli.atomic import write_text_atomic
from ssdcli.errors import DataError

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"

# Names that mean the same split, in the order they are tried. Exporters name the validation
# split ``val`` (Ultralytics, VOC) or ``valid`` (hosted labelling services); recipes say ``val``.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "val": ("val", "valid", "validation"),
    "valid": ("valid", "val", "validation"),
    "validation": ("validation", "val", "valid"),
}


def resolve_split(splits: Collection[str], name: str) -> str | None:
    """The name ``name`` has among ``splits``: itself, else an alias (``val`` <-> ``valid``)."""
    for candidate in SPLIT_ALIASES.get(name, (name,)):
        if candidate in splits:
            return candidate
    return None


@dataclass
class Record:
    """One image and its ground truths.

    Attributes:
        image_id: identifier unique in the manifest (VOC stem, COCO image id as text, YOLO stem).
        image_path: absolute path of the image file.
        size_hw: real image size ``(H, W)`` in pixels (after EXIF orientation).
        boxes_xyxy: float32 ``[G, 4]``, xyxy in pixels of the image, 0-based continuous coordinates
            (VOC devkit coordinates minus 1 on all four), ``0 <= x0 < x1 <= W``.
        labels: int64 ``[G]``, class index ``0..C-1`` into ``Manifest.class_names``.
        difficult: bool ``[G]``, VOC ``difficult`` flag (excluded from training by default).
        iscrowd: bool ``[G]``, COCO ``iscrowd`` flag (never trained on, kept for evaluation).
    """

    image_id: str
    image_path: str
    size_hw: tuple[int, int]
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray

    @classmethod
    def make(
        cls,
        image_id: str,
        image_path: str | Path,
        size_hw: tuple[int, int],
        boxes_xyxy: object = (),
        labels: object = (),
        difficult: object = None,
        iscrowd: object = None,
    ) -> Record:
        """Builds a record, converting the arrays to their canonical dtypes and shapes."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        count = len(boxes)
        flags = [
            np.zeros(count, bool) if f is None else np.asarray(f, bool).reshape(-1)
            for f in (difficult, iscrowd)
        ]
        return cls(
            image_id=str(image_id),
            image_path=str(image_path),
            size_hw=(int(size_hw[0]), int(size_hw[1])),
            boxes_xyxy=boxes,
            labels=np.asarray(labels, dtype=np.int64).reshape(-1),
            difficult=flags[0],
            iscrowd=flags[1],
        )


@dataclass(frozen=True)
class Problem:
    """One finding of data validation.

    ``kind`` is one of :data:`PROBLEM_KINDS`; ``file`` is the file the user should look at
    (annotation or image); ``message`` says what was found and what was done about it.
    """

    kind: str
    file: str
    message: str


# Every kind of problem the readers report, with what happens to the data.
PROBLEM_KINDS: dict[str, str] = {
    "missing_image": "image file not found; image skipped",
    "unreadable_image": "image file cannot be decoded; image skipped",
    "missing_annotation": "listed in a split but has no annotation file; image skipped",
    "size_mismatch": "annotated size differs from the real image; real size used",
    "out_of_bounds": "box outside the image; clipped (dropped if nothing is left)",
    "zero_area": "box with zero or negative width or height; dropped",
    "unknown_class": "object of a class not in the class list; dropped",
    "duplicate": "identical box of the same class twice; the copy dropped",
    "near_duplicate": "two boxes of the same class with IoU >= 0.9; both kept",
    "orphan_annotation": "annotation that names no known image; dropped",
}


@dataclass
class Manifest:
    """A validated data set: class names, records, named splits and the problems found.

    Attributes:
        class_names: foreground class names; label ``i`` means ``class_names[i]``.
        records: every usable image, in a fixed order.
        splits: split name -> indices into ``records`` (an image may be in several splits).
        category_ids: COCO category id of each label (for writing COCO results), else None.
        source: absolute path of the data set that was read.
        format: ``voc``, ``coco``, ``yolo`` or ``synthetic``.
        problems: what validation found (see :data:`PROBLEM_KINDS`).
        notes: one line each on how the data was read (a category that is not a class, a path
            found elsewhere than written, a split made here); not problems, so never --strict.
        split_made: how the splits were made when the data set had none (``val``, ``test``
            fractions, ``seed``, ``duplicate_groups``), else None.
    """

    class_names: list[str]
    records: list[Record]
    splits: dict[str, list[int]]
    category_ids: list[int] | None = None
    source: str = ""
    format: str = "voc"
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    split_made: dict | None = None

    def resolve_split(self, split: str) -> str | None:
        """The name ``split`` has in this data set (``val`` finds ``valid`` and back), or None."""
        return resolve_split(self.splits, split)

    def split_indices(self, split: str) -> list[int]:
        """Indices of the records in ``split``; DataError naming the known splits if absent.

        ``val`` and ``valid`` name the same split (exporters write either).
        """
        found = self.resolve_split(split)
        if found is None:
            known = ", ".join(sorted(self.splits)) or "none"
            raise DataError(
                f"split {split!r} is not in the data set {self.source} (splits: {known}); "
                "fix: set data.train_split/val_split/test_split to one of them"
            )
        return self.splits[found]

    def save(self, path: str | Path) -> Path:
        """Writes the manifest as JSON atomically (temp name in the same folder, then rename)."""
        path = Path(path)
        return write_text_atomic(path, _to_json(self, path.parent))

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Reads a manifest written by :meth:`save`; DataError naming the file if it cannot."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.is_file():
            raise DataError(
                f"manifest {path} does not exist; fix: run `ssd prepare-data SOURCE --out "
                f"{path.parent}` or correct data.manifest"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return _from_json(raw, path.parent)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}:{error.lineno}: malformed manifest JSON ({error.msg})"
            ) from None
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"{path}: not a manifest written by `ssd prepare-data` ({error!r}); "
                "fix: prepare it again"
            ) from None


def _rel(path: str, source: str) -> str:
    """``path`` relative to ``source`` when it lies inside it (keeps manifests short), else
    absolute; ``source`` is absolute."""
    absolute = os.path.abspath(path)
    if not source:
        return absolute
    try:
        return Path(absolute).relative_to(source).as_posix()
    except ValueError:
        return absolute


def _record_json(record: Record, source: str) -> str:
    boxes = [[round(float(v), 4) for v in box] for box in record.boxes_xyxy]
    item = {
        "id": record.image_id,
        "path": _rel(record.image_path, source),
        "size_hw": list(record.size_hw),
        "boxes_xyxy": boxes,
        "labels": record.labels.tolist(),
        "difficult": [int(v) for v in record.difficult],
        "iscrowd": [int(v) for v in record.iscrowd],
    }
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def _to_json(manifest: Manifest, folder: Path) -> str:
    """One header block, then one line per record and per problem (readable, diff-friendly).

    ``source`` is written absolute (the manifest reads the same from any working folder) and
    relative to the manifest's ``folder`` (``source_from_manifest``: found again when the data
    and the manifest moved together)."""
    source = os.path.abspath(manifest.source) if manifest.source else manifest.source
    head = {
        "manifest_version": MANIFEST_VERSION,
        "format": manifest.format,
        "source": source,
        "source_from_manifest": os.path.relpath(source, os.path.abspath(folder))
        if source
        else None,
        "class_names": manifest.class_names,
        "category_ids": manifest.category_ids,
        "splits": {name: manifest.splits[name] for name in sorted(manifest.splits)},
    }
    # Written only when present, so manifests of data sets read as before stay byte-identical.
    if manifest.split_made is not None:
        head["split_made"] = manifest.split_made
    if manifest.notes:
        head["notes"] = manifest.notes
    lines = ["{"]
    lines += [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    problems = [
        json.dumps([p.kind, p.file, p.message], ensure_ascii=False) for p in manifest.problems
    ]
    lines.append(
        ' "problems": [' + ("\n  " + ",\n  ".join(problems) + "\n " if problems else "") + "],"
    )
    records = [_record_json(r, source) for r in manifest.records]
    lines.append(
        ' "records": [' + ("\n  " + ",\n  ".join(records) + "\n " if records else "") + "]"
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _from_json(raw: dict, folder: Path) -> Manifest:
    if raw["manifest_version"] != MANIFEST_VERSION:
        raise ValueError(f"manifest_version {raw['manifest_version']} != {MANIFEST_VERSION}")
    source = raw["source"]
    beside = raw.get("source_from_manifest")
    if source and beside and not Path(source).exists() and (folder / beside).exists():
        source = os.path.normpath(folder / beside)  # data and manifest moved together
    records = [
        Record.make(
            item["id"],
            str(Path(source, item["path"])),
            tuple(item["size_hw"]),
            item["boxes_xyxy"],
            item["labels"],
            item["difficult"],
            item["iscrowd"],
        )
        for item in raw["records"]
    ]
    return Manifest(
        class_names=list(raw["class_names"]),
        records=records,
        splits={k: [int(i) for i in v] for k, v in raw["splits"].items()},
        category_ids=raw["category_ids"],
        source=source,
        format=raw["format"],
        problems=[Problem(*p) for p in raw["problems"]],
        notes=[str(n) for n in raw.get("notes", [])],
        split_made=raw.get("split_made"),
    )
