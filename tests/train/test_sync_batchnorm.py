"""Synchronised batch norm over gloo (CPU data-parallel training)."""

from __future__ import annotations

import torch
from torch import nn

from ssdcli.train.distributed import GlooSyncBatchNorm, _to_gloo_sync


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
