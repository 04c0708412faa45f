"""Data sets: read them, prepare them, feed them to a network.

The main names are importable from the package (``from ssdcli.data import Manifest``); each is
loaded on first use, so numpy-only users never load torch. Three rooms, lowest first, on two
shared modules (a room imports only from the shared modules and from rooms below it):

* shared: :mod:`ssdcli.data.records` (``Record``, ``Problem``, ``Manifest`` with ``save``/``load``;
  ``resolve_split``: ``val`` finds ``valid``) and :mod:`ssdcli.data.images` (``read_image_rgb``,
  ``image_size_hw``, ``ImageFinder``).
* :mod:`ssdcli.data.readers`: one module per layout (``voc``, ``flatvoc``, ``coco``, ``yolo``,
  ``yolo_folders``, ``splitfolders``, ``prepared`` for a ``manifest.json``), each defining one
  ``Reader`` (:mod:`~ssdcli.data.readers.base`: the one ``read`` signature) listed once in
  :mod:`~ssdcli.data.readers.registry`; ``validate`` holds the box rules every reader applies.
* :mod:`ssdcli.data.prepare`: ``layout`` (``open_dataset``: any layout, detected through the
  registry; ``detect_layout``), ``splits`` (made splits, ``trainval``), ``dedup`` (same
  pictures), ``stats`` (summaries), ``synthetic`` (the generated shapes set; ``pattern_images``,
  unlabelled sample pictures), ``manifest`` (``read_dataset``, ``build_manifest`` from the
  recipe's ``data``, ``locate_data``, ``relabel``).
* :mod:`ssdcli.data.pipeline` (torch): ``transforms`` (``augment_ssd``, ``preprocess_image``,
  ``AugmentSettings``), ``dataset`` (``DetectionDataset``), ``collate`` (``Batch``), ``sampler``
  (``EpochBatchSampler``), ``loader`` (``build_dataset``/``build_loader``).
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
    "pattern_images": "prepare.synthetic",
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
