"""The feature-pyramid necks (``model.neck``): hand-worked top-down and bottom-up sums."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdcli.config import Recipe
from ssdcli.model import build_detector
from ssdcli.model.neck import FeaturePyramid, make_neck


def _hand_workable(neck: FeaturePyramid) -> FeaturePyramid:
    """One channel; laterals multiply by 1; smoothing is the identity; each bottom-up step
    keeps the top-left pixel of every 2x2 block (a 1x1 max-pool of stride 2)."""
    for lateral in neck.lateral:
        nn.init.ones_(lateral.conv.weight)
        lateral.bn.running_mean.zero_()
        lateral.bn.running_var.fill_(1.0 - lateral.bn.eps)  # 1 / sqrt(var + eps) == 1
    neck.smooth = nn.ModuleList(nn.Identity() for _ in neck.smooth)
    if neck.down is not None:
        neck.down = nn.ModuleList(nn.MaxPool2d(1, stride=2) for _ in neck.down)
    return neck.eval()


# Three levels, finest first: 4x4, 2x2, 1x1 (the sizes stride-2 halving makes).
C1 = torch.arange(16.0).reshape(1, 1, 4, 4)
C2 = torch.tensor([[100.0, 200.0], [300.0, 400.0]]).reshape(1, 1, 2, 2)
C3 = torch.tensor([1000.0]).reshape(1, 1, 1, 1)


def test_fpn_adds_each_coarser_level_resized_to_the_finer_one() -> None:
    neck = _hand_workable(FeaturePyramid([1, 1, 1], channels=1))
    p1, p2, p3 = neck([C1, C2, C3])
    assert p3.flatten().tolist() == [1000.0]
    assert p2.flatten().tolist() == [1100.0, 1200.0, 1300.0, 1400.0]
    # P1 = C1 + nearest 2x upsampling of P2: each P2 value covers a 2x2 block.
    expected_p1 = C1 + torch.tensor([[1100.0, 1200.0], [1300.0, 1400.0]]).repeat_interleave(
        2, 0
    ).repeat_interleave(2, 1)
    assert torch.equal(p1, expected_p1)
    assert p1[0, 0, 0].tolist() == [1100.0, 1101.0, 1202.0, 1203.0]


def test_pan_adds_each_finer_output_brought_down_to_the_coarser_one() -> None:
    neck = _hand_workable(FeaturePyramid([1, 1, 1], channels=1, bottom_up=True))
    n1, n2, n3 = neck([C1, C2, C3])
    p1 = C1 + torch.tensor([[1100.0, 1200.0], [1300.0, 1400.0]]).repeat_interleave(
        2, 0
    ).repeat_interleave(2, 1)
    assert torch.equal(n1, p1)
    # N2 = P2 + the top-left pixel of each 2x2 block of N1: P1 at (0,0), (0,2), (2,0), (2,2).
    assert n2.flatten().tolist() == [1100.0 + 1100.0, 1200.0 + 1202.0, 1300.0 + 1308.0,
                                     1400.0 + 1410.0]  # fmt: skip
    # N3 = P3 + N2's top-left pixel.
    assert n3.flatten().tolist() == [1000.0 + 2200.0]


def test_levels_of_odd_sizes_keep_their_sizes_and_take_the_neck_channels() -> None:
    sizes = [(48, 48), (24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
    channels = [40, 112, 320, 256, 128, 64]
    maps = [torch.randn(2, c, h, w) for c, (h, w) in zip(channels, sizes, strict=True)]
    for kind in ("fpn", "pan"):
        outs = make_neck(kind, channels, 24).eval()(maps)
        assert [tuple(o.shape) for o in outs] == [(2, 24, h, w) for h, w in sizes]


def test_no_neck_is_none_and_an_unknown_one_is_an_error() -> None:
    assert make_neck("none", [8, 8], 16) is None
    with pytest.raises(ValueError, match="unknown neck"):
        make_neck("bifpn", [8, 8], 16)  # type: ignore[arg-type]


def test_a_detector_with_a_neck_builds_trains_and_can_freeze_it() -> None:
    recipe = Recipe.model_validate(
        {
            "model": {
                "backbone": "tiny",
                "size_hw": [128, 128],
                "width": 0.25,
                "neck": "pan",
                "neck_channels": 16,
                "freeze": ["neck"],
            },  # fmt: skip
            "priors": {"aspect_ratios": [[2]] * 6},
        }
    )
    detector = build_detector(recipe, num_classes=2)
    model = detector.model
    assert all(not p.requires_grad for p in model.neck.parameters())
    batch_norms = [m for m in model.train().neck.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batch_norms and not any(m.training for m in batch_norms)  # frozen: statistics kept
    cls_logits_BPK, box_deltas_BP4 = model(torch.randn(2, 3, 128, 128))
    assert cls_logits_BPK.shape == (2, detector.priors_P4.shape[0], 3)
    (cls_logits_BPK.sum() + box_deltas_BP4.sum()).backward()
    head_weights = [p for p in model.cls_head.parameters() if p.requires_grad]
    assert head_weights and all(p.grad is not None for p in head_weights)
