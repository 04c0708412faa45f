"""Data sets: readers, the manifest, synthetic data, augmentation, Dataset and loading.

The main names are importable from the package (``from ssdcli.data import Manifest``); each is
loaded on first use, so numpy-only users never load torch. The modules:

* :mod:`ssdcli.data.records`: ``Record``, ``Problem``, ``Manifest`` (``save``/``load``).
* :mod:`ssdcli.data.layout`: ``open_dataset`` (any layout, detected), ``detect_layout``.
* :mod:`ssdcli.data.manifest`: ``read_dataset``, ``build_manifest`` (from the recipe's ``data``),
  ``prepare_synthetic``, ``relabel``.
* :mod:`ssdcli.data.voc`, :mod:`ssdcli.data.flatvoc`, :mod:`ssdcli.data.coco`,
  :mod:`ssdcli.data.yolo`, :mod:`ssdcli.data.splitfolders`: the readers.
* :mod:`ssdcli.data.splits` (``resolve_split``: ``val`` finds ``valid``),
  :mod:`ssdcli.data.splitmaker` (``make_splits``), :mod:`ssdcli.data.dedup` (same pictures).
* :mod:`ssdcli.data.validate`: the box rules and problem log; :mod:`ssdcli.data.stats`: summaries.
* :mod:`ssdcli.data.synthetic`: ``render_sample``, ``write_synthetic``, ``ensure_synthetic``,
  ``pattern_images`` (unlabelled sample pictures).
* :mod:`ssdcli.data.images`: ``read_image_rgb``, ``image_size_hw``.
* :mod:`ssdcli.data.transforms`: ``augment_ssd``, ``preprocess_image``, ``normalize_image``.
* :mod:`ssdcli.data.dataset`, :mod:`ssdcli.data.collate`, :mod:`ssdcli.data.loader` (torch):
  ``DetectionDataset``, ``Batch``/``collate``, ``build_dataset``/``build_loader``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names importable as ``from ssdcli.data import X``; loaded on first use (PEP 562), so that
# ``from ssdcli.data import Manifest`` does not import torch.
_EXPORTS = {
    "Record": "records",
    "Problem": "records",
    "Manifest": "records",
    "open_dataset": "layout",
    "resolve_split": "splits",
    "read_dataset": "manifest",
    "build_manifest": "manifest",
    "ensure_synthetic": "synthetic",
    "pattern_images": "synthetic",
    "read_image_rgb": "images",
    "preprocess_image": "transforms",
    "augment_ssd": "transforms",
    "AugmentSettings": "transforms",
    "DetectionDataset": "dataset",
    "Batch": "collate",
    "collate": "collate",
    "build_dataset": "loader",
    "build_loader": "loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ssdcli.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ssdcli.data.{_EXPORTS[name]}"), name)
