"""Data sets: readers, the manifest, synthetic data, augmentation, Dataset and loading.

The main names are importable from the package (``from ssdcli.data import Manifest``); each is
loaded on first use, so numpy-only users never load torch. The modules:

* :mod:`ssdcli.data.records`: ``Record``, ``Problem``, ``Manifest`` (``save``/``load``).
* :mod:`ssdcli.data.prepare.layout`: ``open_dataset`` (any layout, detected), ``detect_layout``.
* :mod:`ssdcli.data.prepare.manifest`: ``read_dataset``, ``build_manifest`` (from the recipe's ``data``),
  ``prepare_synthetic``, ``relabel``.
* :mod:`ssdcli.data.readers.voc`, :mod:`ssdcli.data.readers.flatvoc`, :mod:`ssdcli.data.readers.coco`,
  :mod:`ssdcli.data.readers.yolo`, :mod:`ssdcli.data.readers.splitfolders`: the readers.
* :mod:`ssdcli.data.prepare.splits` (``resolve_split``: ``val`` finds ``valid``),
  :mod:`ssdcli.data.prepare.splits` (``make_splits``), :mod:`ssdcli.data.prepare.dedup` (same pictures).
* :mod:`ssdcli.data.readers.validate`: the box rules and problem log; :mod:`ssdcli.data.prepare.stats`: summaries.
* :mod:`ssdcli.data.prepare.synthetic`: ``render_sample``, ``write_synthetic``, ``ensure_synthetic``.
* :mod:`ssdcli.data.images`: ``read_image_rgb``, ``image_size_hw``.
* :mod:`ssdcli.data.pipeline.transforms`: ``augment_ssd``, ``preprocess_image``, ``normalize_image``.
* :mod:`ssdcli.data.pipeline.dataset`, :mod:`ssdcli.data.pipeline.collate`, :mod:`ssdcli.data.pipeline.loader` (torch):
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
    "open_dataset": "prepare.layout",
    "resolve_split": "records",
    "read_dataset": "prepare.manifest",
    "build_manifest": "prepare.manifest",
    "ensure_synthetic": "prepare.synthetic",
    "read_image_rgb": "images",
    "preprocess_image": "pipeline.transforms",
    "augment_ssd": "pipeline.transforms",
    "AugmentSettings": "pipeline.transforms",
    "DetectionDataset": "pipeline.dataset",
    "Batch": "pipeline.collate",
    "collate": "pipeline.collate",
    "build_dataset": "pipeline.loader",
    "build_loader": "pipeline.loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ssdcli.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ssdcli.data.{_EXPORTS[name]}"), name)
