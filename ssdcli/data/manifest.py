"""Reading a data set into a :class:`Manifest`: by format, or from the recipe's ``data`` section.

``read_dataset`` dispatches on the format; ``build_manifest`` is what the engine calls with the
recipe's ``data`` section (``data.manifest`` if set, else ``data.root`` in any layout of
``data.format`` read by :func:`ssdcli.data.layout.open_dataset`, the synthetic set being
generated there on first use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.data.coco import read_coco
from ssdcli.data.records import MANIFEST_NAME, Manifest, Problem, Record
from ssdcli.data.splits import add_trainval
from ssdcli.data.synthetic import ensure_synthetic
from ssdcli.data.voc import read_voc
from ssdcli.data.yolo import read_yolo
from ssdcli.errors import DataError

if TYPE_CHECKING:
    from ssdcli.config import DataConfig

READERS = {"voc": read_voc, "coco": read_coco, "yolo": read_yolo}


def read_dataset(
    source: str | Path,
    format: str,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
) -> Manifest:
    """Reads and validates a data set of ``format`` (``voc``, ``coco``, ``yolo``).

    A ``trainval`` split is added as ``train`` + ``val`` (or ``valid``) when the data set has both
    but no ``trainval`` (the default ``data.train_split``).
    """
    if format not in READERS:
        raise DataError(f"unknown data format {format!r}; fix: use one of {sorted(READERS)}")
    manifest = READERS[format](source, splits, class_names, decode)
    add_trainval(manifest.splits)
    return manifest


def prepare_synthetic(out: str | Path, images: int, size: int, seed: int) -> Manifest:
    """Generates the synthetic set in ``out`` (if not there yet) and writes its manifest."""
    root = ensure_synthetic(out, images, size, seed)
    manifest_path = root / MANIFEST_NAME
    if manifest_path.is_file():
        return Manifest.load(manifest_path)
    manifest = read_voc(root)
    manifest.format = "synthetic"
    manifest.save(manifest_path)
    return manifest


def build_manifest(data_cfg: DataConfig) -> Manifest:
    """The manifest that a recipe's ``data`` section describes.

    Args:
        data_cfg: the recipe's ``DataConfig`` (or any object with the same attributes: ``format``,
            ``root``, ``manifest``, ``class_names``, ``synthetic_images``, ``synthetic_size``,
            ``synthetic_seed``).

    Returns:
        A :class:`Manifest`, relabelled to ``data_cfg.class_names`` when those are given.

    Raises:
        DataError: the manifest or root is missing or unusable (message names the path and fix).
    """
    if data_cfg.manifest:
        manifest = Manifest.load(data_cfg.manifest)
    elif data_cfg.format == "synthetic":
        manifest = prepare_synthetic(
            data_cfg.root,
            data_cfg.synthetic_images,
            data_cfg.synthetic_size,
            data_cfg.synthetic_seed,
        )
    else:
        root = Path(data_cfg.root)
        if not root.exists():
            raise DataError(
                f"data.root {root} does not exist: no {data_cfg.format} data set there; fix: "
                "set data.root (or data.manifest from `ssd prepare-data`) to your data set"
            )
        from ssdcli.data.layout import open_dataset  # imports every reader; only needed here

        # Any layout of data.format (VOC devkit or flat, split folders, COCO, YOLO); data
        # without splits gets the same train/val/test as `ssd prepare-data` makes by default.
        return open_dataset(root, data_cfg.format, class_names=data_cfg.class_names)
    if data_cfg.class_names and list(data_cfg.class_names) != manifest.class_names:
        manifest = relabel(manifest, data_cfg.class_names)
    return manifest



def relabel(manifest: Manifest, class_names: Sequence[str]) -> Manifest:
    """The manifest with labels re-indexed to ``class_names``; objects of other classes dropped."""
    unknown = [name for name in class_names if name not in manifest.class_names]
    if unknown:
        raise DataError(
            f"data.class_names {unknown} are not in the data set {manifest.source} "
            f"(classes: {manifest.class_names}); fix: correct data.class_names"
        )
    new_index = np.array(
        [class_names.index(n) if n in class_names else -1 for n in manifest.class_names],
        dtype=np.int64,
    )
    records = []
    for record in manifest.records:
        labels = new_index[record.labels] if len(record.labels) else record.labels
        keep = labels >= 0
        records.append(
            Record(
                record.image_id,
                record.image_path,
                record.size_hw,
                record.boxes_xyxy[keep],
                labels[keep],
                record.difficult[keep],
                record.iscrowd[keep],
            )
        )
    category_ids = None
    if manifest.category_ids is not None:
        category_ids = [manifest.category_ids[manifest.class_names.index(n)] for n in class_names]
    problems: list[Problem] = list(manifest.problems)
    return Manifest(
        list(class_names),
        records,
        dict(manifest.splits),
        category_ids,
        manifest.source,
        manifest.format,
        problems,
    )
