"""The grouped greedy NMS against ``torchvision.ops.nms``, group by group."""

from __future__ import annotations

import pytest
import torch
import torchvision

from ssdcli import nms
from ssdcli.nms import greedy_nms_in_order


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_pairs", [None, 1000])
def test_greedy_nms_in_order_equals_torchvision_per_group(seed, max_pairs, monkeypatch) -> None:
    if max_pairs:  # groups in several runs, the largest through torchvision's own kernel
        monkeypatch.setattr(nms, "_MAX_PAIRS", max_pairs)
    gen = torch.Generator().manual_seed(seed)
    n = 400
    centres = torch.rand(n // 8, 2, generator=gen).repeat_interleave(8, 0)
    centres += 0.03 * torch.randn(n, 2, generator=gen)
    half = 0.02 + 0.1 * torch.rand(n, 2, generator=gen)
    boxes = torch.cat((centres - half, centres + half), 1)
    boxes[::17] = boxes[1::17][: len(boxes[::17])]  # identical boxes
    boxes[::23, 2] = boxes[::23, 0]  # zero-area boxes
    groups = (7 * torch.rand(n, generator=gen) ** 2).long()  # groups of 15 to 150 boxes
    scores = torch.rand(n, generator=gen).sort(descending=True).values  # input order = rank
    for max_per_group, iou in ((0, 0.45), (0, 0.3), (5, 0.6)):
        kept = greedy_nms_in_order(boxes.numpy(), groups.numpy(), iou, max_per_group)
        expected = torch.zeros(n, dtype=torch.bool)
        for g in groups.unique():
            members = (groups == g).nonzero().squeeze(1)
            if max_per_group:
                members = members[:max_per_group]
            expected[members[torchvision.ops.nms(boxes[members], scores[members], iou)]] = True
        assert torch.equal(torch.from_numpy(kept), expected)
        assert 0 < int(expected.sum()) < n
