"""The one table of data-set readers: layout detection, ``open_dataset`` and ``read_dataset``
all look formats up here, in this order.

Order matters where layouts overlap: a ``data.yaml`` wins over the folders it names, a devkit
over split folders, a data set's own files over a ``manifest.json`` beside them. Adding a format
is one module defining a :class:`Reader` and one line in :data:`_READERS` (or, for a plug-in or
a test, :func:`register`).
"""

from __future__ import annotations

from ssdcli.data.readers import coco, flatvoc, prepared, splitfolders, voc, yolo, yolo_folders
from ssdcli.data.readers.base import Reader
from ssdcli.errors import UsageError

_READERS: list[Reader] = [
    yolo.READER,  # data.yaml (or a .yaml file)
    voc.READER,  # VOC devkit: Annotations/ + JPEGImages/
    splitfolders.READER,  # train/ valid/ test/, each VOC, COCO or YOLO
    coco.READER,  # COCO JSON (or a .json file)
    flatvoc.READER,  # VOC XML beside the images
    yolo_folders.READER,  # images/ + labels/ with classes.txt
    prepared.READER,  # manifest.json
]


def readers() -> tuple[Reader, ...]:
    """Every reader, in the order layout detection tries them."""
    return tuple(_READERS)


def formats() -> tuple[str, ...]:
    """The ``--format`` values some reader answers to, sorted."""
    return tuple(sorted({name for reader in _READERS for name in reader.formats}))


def register(reader: Reader, before: str | None = None) -> None:
    """Adds ``reader`` to the table, before the reader named ``before`` (else last).

    Raises:
        UsageError: a reader of that name is there already, or ``before`` names none.
    """
    names = [known.name for known in _READERS]
    if reader.name in names:
        raise UsageError(f"a data reader named {reader.name!r} is registered already")
    if before is not None and before not in names:
        raise UsageError(f"no data reader named {before!r}; readers: {', '.join(names)}")
    _READERS.insert(names.index(before) if before is not None else len(_READERS), reader)


def unregister(name: str) -> None:
    """Removes the reader named ``name`` (a no-op when there is none)."""
    _READERS[:] = [reader for reader in _READERS if reader.name != name]
