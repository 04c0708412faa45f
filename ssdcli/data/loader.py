"""DataLoader construction: the epoch-aware sampler and the settings from the recipe.

The sampler runs in the main process and yields keys ``epoch * N + position``; the dataset
derives its augmentation seed from them (see :mod:`ssdcli.data.dataset`). The order of epoch ``e``
is a permutation drawn from ``(seed, e)`` alone, so a resumed run can replay it exactly
(:meth:`EpochSampler.set_epoch` with ``start``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ssdcli.data.collate import collate
from ssdcli.data.dataset import DetectionDataset
from ssdcli.data.records import Manifest
from ssdcli.data.transforms import AugmentSettings

if TYPE_CHECKING:
    from ssdcli.config import DataConfig, InputConfig


class EpochSampler(Sampler[int]):
    """Yields dataset keys for one epoch at a time; moves to the next epoch after each full pass.

    Args:
        num_samples: dataset length N.
        shuffle: permute positions per epoch (training) or keep them in order (evaluation).
        seed: permutation seed.
        num_replicas, rank: distributed sharding: rank ``r`` takes every ``num_replicas``-th
            position of the (padded by wrapping) order, so every rank gets the same count.
    """

    def __init__(
        self, num_samples: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        self.num_samples, self.shuffle, self.seed = num_samples, shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Next iteration yields epoch ``epoch``, skipping its first ``start`` keys (resume)."""
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> np.ndarray:
        """Positions of this rank in ``epoch`` (int64)."""
        if self.shuffle:
            positions = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        else:
            positions = np.arange(self.num_samples)
        per_rank = -(-self.num_samples // self.num_replicas)
        positions = np.resize(positions, per_rank * self.num_replicas)
        return positions[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return len(self.order(0)) - self.start

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, self.start
        keys = self.order(epoch)[start:] + epoch * self.num_samples
        yield from keys.tolist()
        self.epoch, self.start = epoch + 1, 0


def build_loader(
    dataset: DetectionDataset,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    workers: int = 0,
    persistent_workers: bool = False,
    pin_memory: bool = False,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """A DataLoader of :class:`~ssdcli.data.collate.Batch` es over ``dataset``.

    Training shuffles per epoch and drops the last incomplete batch; evaluation keeps order and
    every sample. ``loader.sampler`` is the :class:`EpochSampler` (``set_epoch`` for resuming).

    Workers are forked and keep OpenCV's thread setting: calling ``cv2.setNumThreads`` inside a
    forked worker can deadlock when the parent had used OpenCV's thread pool, so it is not done
    (torch already runs one thread per worker).
    """
    sampler = EpochSampler(
        len(dataset), shuffle=train, seed=seed, num_replicas=num_replicas, rank=rank
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory and torch.cuda.is_available(),
        drop_last=train and len(sampler) >= batch_size,
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
    )
