"""YOLO reader, as Ultralytics reads it: a ``data.yaml`` naming image folders per split.

``data.yaml`` keys: ``path`` (root; relative to the YAML's folder, default that folder),
``train``/``val``/``test`` (a folder of images, a ``.txt`` list of image paths, or a list of
either; relative to ``path``), ``names`` (a list, or a mapping id -> name) and optionally ``nc``
(a count that disagrees with ``names`` is noted; ``names`` wins). A ``../x`` that does not exist
is retried without the ``../`` under the root and the YAML's folder, as Ultralytics does (some
exporters write ``../train/images`` beside the YAML); the retry is noted. The labels of
``.../images/.../x.jpg`` are in ``.../labels/.../x.txt``, one object per line: ``class cx cy w
h`` normalised to ``[0, 1]`` by the image size (a polygon ``class x1 y1 x2 y2 ...`` counts as its
bounding box). An image without a label file has no objects (YOLO's background images).
Boxes leave this module as xyxy pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import yaml

from ssdcli.data.images import IMAGE_SUFFIXES
from ssdcli.data.readers.base import Reader
from ssdcli.data.readers.validate import ProblemLog, check_image, clean_objects
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError

SPLIT_KEYS = ("train", "val", "test")


def _load_yaml(source: Path) -> tuple[Path, dict]:
    path = source / "data.yaml" if source.is_dir() else source
    if not path.is_file():
        raise DataError(f"YOLO data file {path} does not exist; fix: point at the data.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); fix: save it as UTF-8"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(
            f"{path}{line}: malformed YAML ({getattr(error, 'problem', error)}); fix the file"
        ) from None
    if not isinstance(data, dict) or "names" not in data:
        raise DataError(f"{path}: a YOLO data.yaml needs 'names' and split keys; fix the file")
    return path, data


def _names(data: dict, path: Path) -> list[str]:
    names = data["names"]
    if isinstance(names, dict):
        ids = list(names)
        if not all(isinstance(k, int) for k in ids) or sorted(ids) != list(range(len(ids))):
            raise DataError(f"{path}: 'names' ids must be 0..{len(names) - 1}; fix the file")
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: 'names' must be a non-empty list or mapping; fix the file")
    names = [str(name) for name in names]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: 'names' lists a class twice ({names}); fix the file")
    return names


def _check_nc(data: dict, names: list[str], path: Path, log: ProblemLog) -> None:
    """Notes an ``nc`` that disagrees with ``names`` (Ultralytics trusts ``names`` too)."""
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        log.note(f"{path}: nc is {nc!r} but 'names' lists {len(names)} classes; names used")


def _resolve(entry: str, root: Path, yaml_dir: Path, origin: Path, log: ProblemLog) -> Path:
    """The folder or list file ``entry`` names; a missing ``../x`` retried as ``x``."""
    target = Path(entry) if Path(entry).is_absolute() else root / entry
    if target.exists() or not entry.startswith("../"):
        return target
    stripped = entry
    while stripped.startswith("../"):
        stripped = stripped[3:]
    for base in (root, yaml_dir):
        retry = base / stripped
        if retry.exists():
            log.note(
                f"{origin}: {entry!r} does not exist; used {retry} ('../' dropped, as "
                "Ultralytics does for exported data sets)"
            )
            return retry
    return target


def _images(target: Path, root: Path, origin: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if target.is_file() and target.suffix == ".txt":
        lines = [ln.strip() for ln in _read_text(target).splitlines() if ln.strip()]
        return [root / ln if (root / ln).exists() else target.parent / ln for ln in lines]
    raise DataError(f"{origin}: split folder or list {target} does not exist; fix the path")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); fix: save it as UTF-8"
        ) from None


def label_path(image_path: Path) -> Path:
    """``.../images/a/x.jpg`` -> ``.../labels/a/x.txt`` (the last ``images`` part is replaced)."""
    parts = list(image_path.parts)
    if "images" in parts:
        last = len(parts) - 1 - parts[::-1].index("images")
        parts[last] = "labels"
    return Path(*parts).with_suffix(".txt")


def _parse_labels(txt: Path) -> list[tuple[int, list[float], int]]:
    """(class id, [cx, cy, w, h] normalised, line number) per object; DataError if malformed."""
    objects = []
    for number, line in enumerate(_read_text(txt).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            if len(tokens) < 5 or (len(tokens) > 5 and len(tokens) % 2 == 0):
                raise ValueError(f"{len(tokens)} values")
            values = [float(t) for t in tokens[1:]]
            if not all(math.isfinite(v) for v in values):
                raise ValueError("a value is not finite")
            if len(values) > 4:  # a segmentation polygon: its bounding box
                xs, ys = values[0::2], values[1::2]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                values = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
            objects.append((int(tokens[0]), values, number))
        except ValueError as error:
            raise DataError(
                f"{txt}:{number}: expected 'class cx cy w h' ({error}): {line!r}; "
                "fix the label file"
            ) from None
    return objects


def read_yolo(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads and validates a YOLO data set (``source``: the data.yaml or its folder;
    :class:`ssdcli.data.readers.base.ReadFn`).

    ``class_names`` must equal ``names`` of the YAML when given (YOLO labels are indices).
    ``images_dir`` is not used: the YAML names the image folders.
    """
    yaml_path, data = _load_yaml(Path(source).resolve())
    return read_yolo_data(data, yaml_path, splits, class_names, decode)


def read_yolo_data(
    data: dict,
    origin: Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    split_keys: Sequence[str] = SPLIT_KEYS,
) -> Manifest:
    """Reads the data set that a ``data.yaml``-shaped mapping describes.

    Args:
        data: the mapping (``path``, split keys, ``names``, ``nc``).
        origin: the YAML file (or the ``classes.txt`` of a folder without one): relative paths
            start at its folder, and errors name it.
        split_keys: the keys that name splits (the folder form passes ``valid`` as well).
    """
    log = ProblemLog()
    names = _names(data, origin)
    _check_nc(data, names, origin, log)
    if class_names and list(class_names) != names:
        raise DataError(
            f"class names {list(class_names)} differ from {origin} names {names}; "
            "fix: drop data.class_names or make them equal"
        )
    root = (origin.parent / str(data.get("path") or ".")).resolve()
    wanted = [k for k in split_keys if data.get(k)] if not splits else list(splits)
    missing = [k for k in wanted if not data.get(k)]
    if missing:
        raise DataError(f"split(s) {missing} not in {origin}; fix: choose another --split")
    records: list[Record] = []
    position: dict[Path, int] = {}
    split_indices: dict[str, list[int]] = {}
    for split in wanted:
        entries = data[split] if isinstance(data[split], list) else [data[split]]
        targets = [_resolve(str(e), root, origin.parent, origin, log) for e in entries]
        indices = []
        for image_path in [p for target in targets for p in _images(target, root, origin)]:
            if image_path not in position:
                record = _read_one(image_path, root, names, log, decode)
                if record is None:
                    continue
                position[image_path] = len(records)
                records.append(record)
            indices.append(position[image_path])
        split_indices[split] = sorted(set(indices))
    if "test" in split_keys and not data.get("test"):
        _note_unnamed_test_folder(origin, root, log)
    return Manifest(names, records, split_indices, None, str(root), "yolo", log.problems, log.notes)


def _note_unnamed_test_folder(origin: Path, root: Path, log: ProblemLog) -> None:
    """Exporters often leave ``test:`` out of data.yaml although a ``test/`` folder with images
    and labels sits beside ``train/``: say so rather than leave it silently unread."""
    for folder in dict.fromkeys((origin.parent / "test", root / "test")):
        images = folder / "images"
        if images.is_dir() and (folder / "labels").is_dir():
            count = sum(1 for p in images.iterdir() if p.is_file() and not p.name.startswith("."))
            if count:
                log.notes.append(
                    f"{folder} holds {count} images with labels but {origin.name} names no "
                    f"'test' split, so it is not read; add 'test: {folder.name}/images' to "
                    f"{origin} to evaluate on it"
                )
                return


def _read_one(
    image_path: Path, root: Path, names: list[str], log: ProblemLog, decode: bool
) -> Record | None:
    txt = label_path(image_path)
    objects = _parse_labels(txt) if txt.is_file() else []
    size_hw = check_image(image_path, None, log, txt, decode)
    if size_hw is None:
        return None
    height, width = size_hw
    boxes, labels, where = [], [], []
    for cls, (cx, cy, w, h), number in objects:
        if not 0 <= cls < len(names):
            log.add(
                "unknown_class",
                txt,
                f"line {number}: class id {cls} is not in 0..{len(names) - 1}; object dropped",
            )
            continue
        boxes.append(
            [
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            ]
        )
        labels.append(cls)
        where.append(f"line {number} box ({cx:g} {cy:g} {w:g} {h:g})")
    cleaned = clean_objects(
        boxes, labels, [(False, False)] * len(labels), where, size_hw, names, txt, log
    )
    try:  # unique across splits: train/x.jpg and val/x.jpg are different images
        image_id = image_path.relative_to(root).with_suffix("").as_posix()
    except ValueError:
        image_id = image_path.stem
    return Record.make(image_id, image_path, size_hw, *cleaned)


def is_yolo_yaml(path: Path) -> bool:
    """A folder with a ``data.yaml``, or a ``.yaml`` / ``.yml`` file."""
    if path.is_dir():
        return (path / "data.yaml").is_file()
    return path.is_file() and path.suffix.lower() in (".yaml", ".yml")


READER = Reader(
    name="yolo-yaml",
    formats=("yolo",),
    looks_like="data.yaml",
    matches=is_yolo_yaml,
    read=read_yolo,
    reads_file="a data.yaml (YOLO)",
)
