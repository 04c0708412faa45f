"""The one data-order sampler: training and evaluation, one process or several.

The order of an epoch depends only on ``(seed, epoch)``, so a resumed run skips the batches it
had consumed and sees the same data as an uninterrupted one, and N data-parallel processes
together see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class EpochBatchSampler:
    """Yields this rank's index lists for one epoch; the order depends only on ``(seed, epoch)``.

    Args:
        num_samples: size of the split.
        global_batch: images per step over all ranks (the recipe's batch size).
        seed: run seed.
        world_size, rank: data-parallel processes and this one's index; the per-rank batch is
            ``global_batch // world_size``.
        shuffle: permute each epoch (training) or keep the split order (evaluation).
        drop_last: drop the incomplete last batch (training: SSD's BN and loss prefer full
            batches, and every epoch drops other samples since the permutation changes);
            evaluation keeps every sample.
    """

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        assert global_batch % world_size == 0, "global batch must split evenly over ranks"
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.seed = seed
        self.world_size, self.rank = world_size, rank
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = 0
        self.skip_batches = 0

    def __len__(self) -> int:
        """Batches this epoch still yields (after skipping consumed ones)."""
        return max(self.batches_per_epoch - self.skip_batches, 0)

    @property
    def batches_per_epoch(self) -> int:
        """Global batches in one epoch (full ones only with ``drop_last``)."""
        if self.drop_last:
            return self.num_samples // self.global_batch
        return -(-self.num_samples // self.global_batch)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Selects the epoch to iterate next and how many of its first batches to skip."""
        self.epoch = epoch
        self.skip_batches = skip_batches

    def epoch_order(self, epoch: int) -> list[int]:
        """The full one-process sample order of ``epoch`` (a permutation of the split)."""
        if not self.shuffle:
            return list(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        """Yields lists of ``(epoch, index)`` keys for this rank."""
        order = self.epoch_order(self.epoch)
        world, rank = self.world_size, self.rank
        for step in range(self.skip_batches, self.batches_per_epoch):
            chunk = order[step * self.global_batch : (step + 1) * self.global_batch]
            yield [(self.epoch, index) for index in chunk[rank::world]]
