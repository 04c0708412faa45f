"""The manifest a command uses: by format, or from the recipe's ``data`` section.

``read_dataset`` reads a data set of one format through the reader registry (layout detected);
``build_manifest`` is what the commands call with the recipe's ``data`` section (``data.manifest``
if set, else ``data.root`` in any layout of ``data.format`` read by
:func:`ssdcli.data.prepare.layout.open_dataset`, the synthetic set being generated there on first
use). ``locate_data`` / ``anchor_data_paths`` find a run's data where training found it;
``relabel`` re-indexes a manifest to other class names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.data.prepare.layout import detect_layout, open_dataset
from ssdcli.data.prepare.splits import add_trainval
from ssdcli.data.prepare.synthetic import ensure_synthetic
from ssdcli.data.readers.registry import formats
from ssdcli.data.readers.voc import read_voc
from ssdcli.data.records import MANIFEST_NAME, Manifest, Problem, Record
from ssdcli.errors import DataError

if TYPE_CHECKING:
    from ssdcli.config import DataConfig


def read_dataset(
    source: str | Path,
    format: str,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
) -> Manifest:
    """Reads and validates a data set of ``format`` (a format of the reader registry, e.g.
    ``voc``, ``coco``, ``yolo``), in whichever of that format's layouts ``source`` has.

    Unlike :func:`ssdcli.data.prepare.layout.open_dataset` it makes no splits; a ``trainval``
    split is added as ``train`` + ``val`` (or ``valid``) when the data set has both but no
    ``trainval`` (the default ``data.train_split``).

    Raises:
        DataError: ``format`` is no reader's, ``source`` does not exist or is malformed.
        UsageError: ``source`` is in no layout of ``format``.
    """
    known = formats()
    if format not in known:
        raise DataError(f"unknown data format {format!r}; fix: use one of {list(known)}")
    path = Path(source).resolve()
    if not path.exists():
        raise DataError(f"data set {path} does not exist; fix: check the path")
    manifest = detect_layout(path, format).read(path, splits, class_names, decode)
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


def anchor_data_paths(data_cfg: DataConfig, run_dir: Path) -> dict[str, str | None]:
    """Recipe values that pin a run's data where training found it (``ssd train`` stores them).

    ``data.root`` and ``data.manifest`` become absolute, and ``data.root_from_run`` /
    ``data.manifest_from_run`` hold the same paths relative to ``run_dir``, so that the run's
    checkpoint evaluates from any folder, copied anywhere, or with the whole project moved.

    Returns:
        ``{dotted key: value}`` for :func:`ssdcli.config.override_recipe`.
    """
    run_abs = os.path.abspath(run_dir)
    values: dict[str, str | None] = {}
    for key in ("root", "manifest"):
        value = getattr(data_cfg, key)
        absolute = os.path.abspath(value) if value else None
        values[f"data.{key}"] = absolute
        values[f"data.{key}_from_run"] = os.path.relpath(absolute, run_abs) if absolute else None
    return values


def data_path_candidates(value: str, from_run: str | None, run_dir: Path | None) -> list[Path]:
    """Where a recipe's data path may be, most trusted first: the path as stored (absolute since
    training stores it so; a relative one is read from the current folder), then the same path
    relative to the run folder (a moved project)."""
    candidates = [Path(value)]
    if run_dir is not None and from_run:
        candidates.append(Path(os.path.normpath(Path(run_dir) / from_run)))
    if run_dir is not None and not Path(value).is_absolute():
        candidates.append(Path(os.path.normpath(Path(run_dir) / value)))
    return list(dict.fromkeys(candidates))


def locate_data(data_cfg: DataConfig, run_dir: Path | None) -> DataConfig:
    """``data_cfg`` with ``root`` and ``manifest`` pointing at the first candidate that exists
    (:func:`data_path_candidates`); a path found nowhere stays as stored, for the error."""
    update = {}
    for key in ("root", "manifest"):
        value = getattr(data_cfg, key)
        if not value:
            continue
        candidates = data_path_candidates(value, getattr(data_cfg, f"{key}_from_run"), run_dir)
        found = next((path for path in candidates if path.exists()), None)
        if found is not None and str(found) != value:
            update[key] = str(found)
    return data_cfg.model_copy(update=update) if update else data_cfg


def build_manifest(data_cfg: DataConfig, generate: bool = True) -> Manifest:
    """The manifest that a recipe's ``data`` section describes.

    Args:
        data_cfg: the recipe's ``DataConfig`` (or any object with the same attributes: ``format``,
            ``root``, ``manifest``, ``class_names``, ``synthetic_images``, ``synthetic_size``,
            ``synthetic_seed``).
        generate: make the synthetic set when it is missing. Only ``ssd train`` and
            ``ssd prepare-data synthetic`` generate data; every other command passes False and
            gets an error naming the folder and the command that makes it.

    Returns:
        A :class:`Manifest`, relabelled to ``data_cfg.class_names`` when those are given.

    Raises:
        DataError: the manifest or root is missing or unusable (message names the path and fix).
    """
    if data_cfg.manifest:
        manifest = Manifest.load(data_cfg.manifest)
    elif data_cfg.format == "synthetic":
        if not generate and not Path(data_cfg.root).exists():
            raise DataError(
                f"the synthetic data set {data_cfg.root} is not there (the model was trained on "
                "it); fix: make it with `ssd prepare-data synthetic --out "
                f"{data_cfg.root} --images {data_cfg.synthetic_images} --size "
                f"{data_cfg.synthetic_size} --seed {data_cfg.synthetic_seed}`, or pass --data "
                "MANIFEST"
            )
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
