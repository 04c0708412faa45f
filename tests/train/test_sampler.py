"""Data order for training: a function of (seed, epoch), sharded so ranks' batches sum to one."""

from __future__ import annotations

import torch
from torch import nn

from ssdcli.train.distributed import DistInfo, EpochBatchSampler, GlooSyncBatchNorm, _to_gloo_sync


def _batches(sampler: EpochBatchSampler) -> list[list[int]]:
    return [[index for _, index in batch] for batch in sampler]


def test_ranks_together_see_the_one_process_batches() -> None:
    one = EpochBatchSampler(20, global_batch=4, seed=3, info=DistInfo())
    ranks = [EpochBatchSampler(20, 4, 3, DistInfo(rank=r, world_size=2)) for r in (0, 1)]
    for sampler in (one, *ranks):
        sampler.set_epoch(2)
    single = _batches(one)
    per_rank = [_batches(s) for s in ranks]
    assert len(single) == 5
    for step, batch in enumerate(single):
        assert sorted(per_rank[0][step] + per_rank[1][step]) == sorted(batch)
        assert len(per_rank[0][step]) == len(per_rank[1][step]) == 2


def test_order_depends_on_seed_and_epoch_only() -> None:
    a = EpochBatchSampler(10, 2, seed=0, info=DistInfo())
    b = EpochBatchSampler(10, 2, seed=0, info=DistInfo())
    assert a.epoch_order(1) == b.epoch_order(1)
    assert a.epoch_order(1) != a.epoch_order(2)
    assert sorted(a.epoch_order(1)) == list(range(10))
    keys = next(iter(a))
    assert all(epoch == 0 for epoch, _ in keys)


def test_skip_resumes_mid_epoch_and_incomplete_batch_is_dropped() -> None:
    sampler = EpochBatchSampler(11, 3, seed=5, info=DistInfo())
    sampler.set_epoch(1)
    full = _batches(sampler)
    assert len(full) == 3  # 11 // 3
    sampler.set_epoch(1, skip_batches=2)
    assert len(sampler) == 1
    assert _batches(sampler) == full[2:]


def test_sync_bn_equals_batchnorm_without_process_group() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    reference = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    reference.load_state_dict(model.state_dict())
    converted = _to_gloo_sync(model)
    assert isinstance(converted[1], GlooSyncBatchNorm)
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(converted(x), reference(x))
    assert set(converted.state_dict()) == set(reference.state_dict())
