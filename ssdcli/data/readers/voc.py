"""Pascal VOC reader: a VOCdevkit folder with one or more years, or a single year-like folder.

Layouts accepted for ``root``: ``root/Annotations`` (one data set, e.g. BCCD), ``root/VOC2007`` +
``root/VOC2012`` (several years, ids prefixed ``VOC2007/``), or ``root/VOCdevkit/VOC20xx``.
Splits come from ``ImageSets/Main/<split>.txt`` (per-class files such as ``cat_train.txt`` are
skipped); without ``ImageSets/Main`` every annotation goes into the split ``all``.

Coordinates: the devkit's are 1-based inclusive pixel indices; all four are reduced by 1, so a
devkit "point" box stays zero-area and is dropped and reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from ssdcli.data.images import ImageFinder
from ssdcli.data.readers.base import SPLIT_FOLDER_NAMES, Reader
from ssdcli.data.readers.validate import ProblemLog, check_image, clean_objects, resolve_class_names
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError


@dataclass
class _Node:
    """A minimal XML element that remembers its line (ElementTree does not)."""

    tag: str
    line: int
    children: list[_Node] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findtext(self, tag: str) -> str | None:
        node = self.find(tag)
        return None if node is None else node.text.strip()


def parse_xml(path: Path) -> _Node:
    """Parses an XML file into :class:`_Node` s; DataError with file and line if malformed."""
    parser = expat.ParserCreate()
    stack: list[_Node] = [_Node("#document", 0)]

    def start(tag: str, _attrs: dict) -> None:
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as error:
        raise DataError(
            f"{path}:{error.lineno}: malformed XML ({expat.ErrorString(error.code)}, column "
            f"{error.offset + 1}); fix the annotation file"
        ) from None
    return stack[0].children[0]


def _number(node: _Node, tag: str, path: Path) -> float:
    child = node.find(tag)
    if child is None:
        raise DataError(f"{path}:{node.line}: <{node.tag}> has no <{tag}>; fix the annotation")
    try:
        value = float(child.text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "nan" and "inf" parse as floats but are no coordinates
        raise DataError(
            f"{path}:{child.line}: <{tag}> is {child.text.strip()!r}, not a number; "
            "fix the annotation"
        )
    return value


@dataclass
class _Parsed:
    image_id: str
    xml_path: Path
    image_path: Path
    size_hw: tuple[int, int] | None
    objects: list[tuple[str, list[float], bool, int]]  # name, devkit xyxy, difficult, line


def parse_annotation(
    image_id: str, xml_path: Path, year_dir: Path, finder: ImageFinder | None = None
) -> _Parsed:
    """Parses one VOC XML; the image is looked up by ``finder`` if given, else in JPEGImages/."""
    root = parse_xml(xml_path)
    filename = root.findtext("filename")
    images = year_dir / "JPEGImages"
    image_path = images / filename if filename else images / f"{xml_path.stem}.jpg"
    if finder is not None:
        found = finder.find(filename, xml_path.stem)
        image_path = found or (finder.folders or [xml_path.parent])[0] / (
            filename or f"{xml_path.stem}.jpg"
        )
    elif not image_path.is_file() and (images / f"{xml_path.stem}.jpg").is_file():
        image_path = images / f"{xml_path.stem}.jpg"  # <filename> disagrees with the stem
    size_node = root.find("size")
    size_hw = None
    if size_node is not None and size_node.findtext("width") and size_node.findtext("height"):
        size_hw = (
            int(_number(size_node, "height", xml_path)),
            int(_number(size_node, "width", xml_path)),
        )
        # Some tools write 0x0; it is kept so that check_image reports it beside the real size.
    objects = []
    for node in (c for c in root.children if c.tag == "object"):
        name = node.findtext("name")
        bndbox = node.find("bndbox")
        if not name or bndbox is None:
            raise DataError(
                f"{xml_path}:{node.line}: <object> needs <name> and <bndbox>; fix the annotation"
            )
        box = [_number(bndbox, tag, xml_path) for tag in ("xmin", "ymin", "xmax", "ymax")]
        difficult = node.findtext("difficult") or "0"
        if difficult not in ("0", "1"):
            raise DataError(f"{xml_path}:{node.line}: <difficult> is {difficult!r}, not 0 or 1")
        objects.append((name, box, difficult == "1", node.line))
    return _Parsed(image_id, xml_path, image_path, size_hw, objects)


def _year_dirs(root: Path) -> list[tuple[str, Path]]:
    """(id prefix, folder) of each VOC year found under ``root``."""
    if (root / "Annotations").is_dir():
        return [("", root)]
    base = root / "VOCdevkit" if (root / "VOCdevkit").is_dir() else root
    years = sorted(d for d in base.iterdir() if (d / "Annotations").is_dir())
    if not years:
        raise DataError(
            f"{root} holds no VOC data set (no Annotations/ folder in it or in a VOC20xx/ "
            "subfolder); fix: point at the VOCdevkit or year folder, or choose --format"
        )
    return [("", years[0])] if len(years) == 1 else [(f"{d.name}/", d) for d in years]


def _split_lists(year_dir: Path) -> dict[str, list[str]]:
    """Split name -> image ids, from ``ImageSets/Main`` (per-class lists skipped)."""
    main = year_dir / "ImageSets" / "Main"
    if not main.is_dir():
        return {"all": sorted(p.stem for p in (year_dir / "Annotations").glob("*.xml"))}
    splits = {}
    for txt in sorted(main.glob("*.txt")):
        rows = [line.split() for line in txt.read_text().splitlines() if line.strip()]
        if any(len(row) != 1 for row in rows):  # "<class>_<split>.txt" lines read "id  1"
            continue
        splits[txt.stem] = [row[0] for row in rows]
    return splits


def is_devkit(folder: Path) -> bool:
    """Whether ``folder`` is a VOC devkit: ``Annotations/`` + ``JPEGImages/`` in it, or in a
    year folder of it or of its ``VOCdevkit/`` (split-named folders do not count)."""
    if not folder.is_dir():
        return False
    if (folder / "Annotations").is_dir() and (folder / "JPEGImages").is_dir():
        return True
    base = folder / "VOCdevkit" if (folder / "VOCdevkit").is_dir() else folder
    return any(
        (d / "Annotations").is_dir() and (d / "JPEGImages").is_dir()
        for d in base.iterdir()
        if d.is_dir() and d.name not in SPLIT_FOLDER_NAMES
    )


def read_voc(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads and validates a VOC data set (:class:`ssdcli.data.readers.base.ReadFn`).

    Args:
        source: VOCdevkit, year folder, or any folder with ``Annotations/`` and ``JPEGImages/``.
        splits: split names to keep (all found if None).
        class_names: class list (sorted names found if None); other names are problems.
        decode: fully decode every image instead of reading headers.
        images_dir: not used: a devkit keeps its images in ``JPEGImages/``.

    Returns:
        A :class:`Manifest` with ``format="voc"`` and the problems found.
    """
    root = Path(source).resolve()
    if not root.is_dir():
        raise DataError(f"VOC folder {root} does not exist; fix: check the path")
    log = ProblemLog()
    per_split, wanted = _listed_images(root, splits)
    parsed: dict[tuple[str, Path], _Parsed] = {}
    for key in sorted(wanted, key=lambda k: k[0]):
        stem, listing = wanted[key]
        xml_path = key[1] / "Annotations" / f"{stem}.xml"
        if not xml_path.is_file():
            log.add(
                "missing_annotation",
                xml_path,
                f"{stem} is listed in {listing} but has no annotation file; skipped",
            )
            continue
        parsed[key] = parse_annotation(key[0], xml_path, key[1])
    names = resolve_class_names([o[0] for p in parsed.values() for o in p.objects], class_names)
    records: list[Record] = []
    position: dict[tuple[str, Path], int] = {}
    for key, item in parsed.items():
        record = record_from(item, names, log, decode)
        if record is not None:
            position[key] = len(records)
            records.append(record)
    split_indices = {
        name: sorted({position[key] for key in keys if key in position})
        for name, keys in per_split.items()
    }
    return Manifest(names, records, split_indices, None, str(root), "voc", log.problems)


def _listed_images(
    root: Path, splits: Sequence[str] | None
) -> tuple[dict[str, list[tuple[str, Path]]], dict[tuple[str, Path], tuple[str, str]]]:
    """Split -> image keys ``(id, year folder)``, and key -> ``(file stem, listing file)``."""
    per_split: dict[str, list[tuple[str, Path]]] = {}
    wanted: dict[tuple[str, Path], tuple[str, str]] = {}
    for prefix, year_dir in _year_dirs(root):
        for name, ids in _split_lists(year_dir).items():
            if splits and name not in splits:
                continue
            listing = year_dir / "ImageSets" / "Main" / f"{name}.txt"
            for image_id in ids:
                key = (prefix + image_id, year_dir)
                per_split.setdefault(name, []).append(key)
                wanted.setdefault(key, (image_id, str(listing)))
    missing = sorted(set(splits or ()) - set(per_split))
    if missing:
        raise DataError(
            f"split(s) {missing} not found in {root}; fix: choose from the files in ImageSets/Main"
        )
    return per_split, wanted


def record_from(item: _Parsed, names: list[str], log: ProblemLog, decode: bool) -> Record | None:
    """The validated record of one parsed annotation, or None if its image is unusable."""
    size_hw = check_image(item.image_path, item.size_hw, log, item.xml_path, decode)
    if size_hw is None:
        return None
    index_of = {name: i for i, name in enumerate(names)}
    boxes, labels, flags, where = [], [], [], []
    for name, box, difficult, line in item.objects:
        if name not in index_of:
            log.add(
                "unknown_class",
                item.xml_path,
                f"line {line}: class {name!r} is not in the class list {names}; object dropped",
            )
            continue
        boxes.append([v - 1.0 for v in box])  # devkit 1-based -> 0-based continuous
        labels.append(index_of[name])
        flags.append((difficult, False))
        where.append(f"line {line} box ({', '.join(f'{v:g}' for v in box)})")
    cleaned = clean_objects(boxes, labels, flags, where, size_hw, names, item.xml_path, log)
    return Record.make(item.image_id, item.image_path, size_hw, *cleaned)


READER = Reader(
    name="voc-devkit",
    formats=("voc",),
    looks_like="Annotations/ + JPEGImages/ (VOC devkit, also in VOCdevkit/VOC20xx/)",
    matches=is_devkit,
    read=read_voc,
)
