"""DataLoader construction from a dataset and the recipe's settings.

The batches come from :class:`~ssdcli.data.pipeline.sampler.EpochBatchSampler` (keys
``(epoch, index)``; the dataset derives its augmentation seed from them, see
:mod:`ssdcli.data.pipeline.dataset`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from ssdcli.data.pipeline.collate import collate
from ssdcli.data.pipeline.dataset import DetectionDataset
from ssdcli.data.pipeline.sampler import EpochBatchSampler
from ssdcli.data.pipeline.transforms import AugmentSettings
from ssdcli.data.records import Manifest

if TYPE_CHECKING:
    from ssdcli.config import DataConfig, InputConfig


def build_loader(
    dataset: DetectionDataset,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    workers: int = 0,
    persistent_workers: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of :class:`~ssdcli.data.pipeline.collate.Batch` es over ``dataset``.

    Training shuffles per epoch and drops the last incomplete batch; evaluation keeps order and
    every sample. ``loader.batch_sampler`` is the
    :class:`~ssdcli.data.pipeline.sampler.EpochBatchSampler` (``set_epoch`` for resuming).

    Workers are forked and keep OpenCV's thread setting: calling ``cv2.setNumThreads`` inside a
    forked worker can deadlock when the parent had used OpenCV's thread pool, so it is not done
    (torch already runs one thread per worker).
    """
    sampler = EpochBatchSampler(
        len(dataset),
        batch_size,
        seed,
        shuffle=train,
        drop_last=train and len(dataset) >= batch_size,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory and torch.cuda.is_available(),
        persistent_workers=persistent_workers and workers > 0,
    )


def build_dataset(
    manifest: Manifest,
    split: str,
    data_cfg: DataConfig,
    input_cfg: InputConfig,
    size_hw: tuple[int, int],
    *,
    train: bool,
    seed: int = 0,
    resize: str = "stretch",
) -> DetectionDataset:
    """A :class:`DetectionDataset` from the recipe's ``data`` and ``model.input`` sections."""
    return DetectionDataset(
        manifest,
        split,
        size_hw,
        input_cfg,
        train=train,
        augment=AugmentSettings.from_config(data_cfg.augment),
        include_difficult=data_cfg.include_difficult,
        seed=seed,
        resize=resize,
    )
