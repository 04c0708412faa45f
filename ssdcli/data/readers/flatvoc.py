"""Flat VOC: Pascal VOC XML files without the devkit's folders and split lists.

Layouts accepted for ``folder``:

* XML files beside their images (``folder/x.xml`` + ``folder/x.jpg``), as labelling tools save;
* ``annotations/`` or ``Annotations/`` with the images in ``images/`` or ``JPEGImages/`` (or beside
  the XML, or in ``folder`` itself).

Each XML's image is found by its ``<filename>``, else by the XML's stem with any image suffix in any
case (see :class:`ssdcli.data.images.ImageFinder`). There are no split lists: every image goes into
one split: ``all`` (:func:`read_flat_voc`), or the name a split folder gives it
(:func:`read_flat_voc_split`: ``train``, ``valid``...).
Boxes are devkit coordinates converted as by :mod:`ssdcli.data.readers.voc` (xyxy pixels, 0-based).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.images import ImageFinder
from ssdcli.data.readers.base import Reader, only_splits
from ssdcli.data.readers.validate import ProblemLog, resolve_class_names
from ssdcli.data.readers.voc import parse_annotation, record_from
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError

ANNOTATION_DIRS = ("annotations", "Annotations")
IMAGE_DIRS = ("images", "JPEGImages", "Images")


def flat_voc_folders(folder: Path) -> tuple[Path, list[Path]] | None:
    """``(folder of the XML files, folders searched for images)``, or None if not flat VOC."""
    for name in ANNOTATION_DIRS:
        xml_dir = folder / name
        if xml_dir.is_dir() and any(xml_dir.glob("*.xml")):
            images = [folder / d for d in IMAGE_DIRS if (folder / d).is_dir()]
            return xml_dir, [*images, xml_dir, folder]
    if any(folder.glob("*.xml")):
        return folder, [folder, *(folder / d for d in IMAGE_DIRS if (folder / d).is_dir())]
    return None


def read_flat_voc(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads a flat VOC folder into one split ``all`` (:class:`ssdcli.data.readers.base.ReadFn`;
    ``images_dir`` is searched for the images before the usual folders)."""
    return only_splits(read_flat_voc_split(source, "all", class_names, decode, images_dir), splits)


def read_flat_voc_split(
    folder: str | Path,
    split: str,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads and validates a flat VOC folder (see the module docstring for the layouts).

    Args:
        folder: the folder holding the XML files, or ``annotations/`` + ``images/``.
        split: name of the one split every image goes into.
        class_names: class list (sorted names found if None); other names are problems.
        decode: fully decode every image instead of reading headers.
        images_dir: folder searched for the images before the usual ones (``--images-dir``).

    Returns:
        A :class:`Manifest` with ``format="voc"``, one split, and the problems found.
    """
    folder = Path(folder).resolve()
    found = flat_voc_folders(folder) if folder.is_dir() else None
    if found is None:
        raise DataError(
            f"{folder} holds no VOC XML files (looked for *.xml in it and in annotations/ or "
            "Annotations/); fix: point at the folder of the annotations"
        )
    xml_dir, image_dirs = found
    if images_dir is not None:
        image_dirs = [Path(images_dir).resolve(), *image_dirs]
    finder = ImageFinder(image_dirs)
    parsed = [
        parse_annotation(xml.stem, xml, folder, finder) for xml in sorted(xml_dir.glob("*.xml"))
    ]
    names = resolve_class_names([o[0] for p in parsed for o in p.objects], class_names)
    log = ProblemLog()
    records: list[Record] = []
    for item in parsed:
        record = record_from(item, names, log, decode)
        if record is not None:
            records.append(record)
    splits = {split: list(range(len(records)))}
    return Manifest(names, records, splits, None, str(folder), "voc", log.problems)


READER = Reader(
    name="voc-flat",
    formats=("voc",),
    looks_like="VOC *.xml beside the images, or annotations/ + images/",
    matches=lambda path: path.is_dir() and flat_voc_folders(path) is not None,
    read=read_flat_voc,
)
