"""Data order: a function of (seed, epoch), sharded so that ranks' batches sum to one."""

from __future__ import annotations

from ssdcli.data.pipeline.sampler import EpochBatchSampler


def _batches(sampler: EpochBatchSampler) -> list[list[int]]:
    return [[index for _, index in batch] for batch in sampler]


def test_ranks_together_see_the_one_process_batches() -> None:
    one = EpochBatchSampler(20, global_batch=4, seed=3)
    ranks = [EpochBatchSampler(20, 4, 3, world_size=2, rank=r) for r in (0, 1)]
    for sampler in (one, *ranks):
        sampler.set_epoch(2)
    single = _batches(one)
    per_rank = [_batches(s) for s in ranks]
    assert len(single) == 5
    for step, batch in enumerate(single):
        assert sorted(per_rank[0][step] + per_rank[1][step]) == sorted(batch)
        assert len(per_rank[0][step]) == len(per_rank[1][step]) == 2


def test_order_depends_on_seed_and_epoch_only() -> None:
    a = EpochBatchSampler(10, 2, seed=0)
    b = EpochBatchSampler(10, 2, seed=0)
    assert a.epoch_order(1) == b.epoch_order(1)
    assert a.epoch_order(1) != a.epoch_order(2)
    assert sorted(a.epoch_order(1)) == list(range(10))
    keys = next(iter(a))
    assert all(epoch == 0 for epoch, _ in keys)


def test_skip_resumes_mid_epoch_and_incomplete_batch_is_dropped() -> None:
    sampler = EpochBatchSampler(11, 3, seed=5)
    sampler.set_epoch(1)
    full = _batches(sampler)
    assert len(full) == 3  # 11 // 3
    sampler.set_epoch(1, skip_batches=2)
    assert len(sampler) == 1
    assert _batches(sampler) == full[2:]


def test_evaluation_order_keeps_every_sample_in_order() -> None:
    sampler = EpochBatchSampler(7, 3, shuffle=False, drop_last=False)
    assert _batches(sampler) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(sampler) == 3
