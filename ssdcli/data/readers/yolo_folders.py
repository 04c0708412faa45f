"""YOLO folders without a ``data.yaml``: ``images/<split>/`` + ``labels/<split>/``.

Or images straight in ``images/`` (one split ``all``). Class names come from ``classes.txt`` (or
darknet's ``obj.names``; one a line, in label order) in the folder, its ``labels/`` or its parent.
Labels are read as :mod:`ssdcli.data.readers.yolo` reads them; boxes leave as xyxy pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssdcli.data.images import is_image_file
from ssdcli.data.readers.base import Reader, only_splits
from ssdcli.data.readers.yolo import read_yolo_data
from ssdcli.data.records import Manifest
from ssdcli.errors import DataError

CLASS_FILES = ("classes.txt", "obj.names", "classes.names")


def class_file(root: Path) -> Path | None:
    """The ``classes.txt`` (or darknet ``obj.names``) of a YOLO folder, if any."""
    for folder in (root, root / "labels", root.parent):
        for name in CLASS_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def read_yolo_folders(
    source: str | Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: str | Path | None = None,
) -> Manifest:
    """Reads ``images/<split>/`` + ``labels/<split>/`` (or flat ``images/``) without a YAML
    (:class:`ssdcli.data.readers.base.ReadFn`; ``images_dir`` is not used: the images are in
    ``images/``)."""
    root = Path(source)
    images = root / "images"
    subs = sorted(d.name for d in images.iterdir() if d.is_dir())
    if any(is_image_file(p) for p in images.iterdir()) or not subs:
        data = {"all": "images"}
    else:
        data = {name: f"images/{name}" for name in subs}
    manifest = read_yolo_folder_data(root, data, class_names, decode, list(data))
    return only_splits(manifest, splits)


def read_yolo_folder_data(
    root: Path,
    data: dict[str, str],
    class_names: Sequence[str] | None,
    decode: bool,
    split_keys: list[str],
) -> Manifest:
    """Reads YOLO image folders (``data``: split name -> folder under ``root``) with the class
    names of ``classes.txt`` (or ``class_names``); the split folders' YOLO form uses it too."""
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


READER = Reader(
    name="yolo-folders",
    formats=("yolo",),
    looks_like="images/ + labels/ (YOLO, names in classes.txt)",
    matches=lambda path: (path / "images").is_dir() and (path / "labels").is_dir(),
    read=read_yolo_folders,
)
