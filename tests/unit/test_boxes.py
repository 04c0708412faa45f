"""Box conversions, IoU and the box coder, on hand-worked values and properties."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdcli.boxes import (
    BoxCoder,
    box_iou,
    cxcywh_to_xyxy,
    matching_iou,
    to_normalized,
    to_pixels,
    xyxy_to_cxcywh,
)


def test_conversions_by_hand_with_leading_dims() -> None:
    xyxy = torch.tensor([[[10.0, 20.0, 30.0, 60.0]], [[0.0, 0.0, 4.0, 2.0]]])  # (2, 1, 4)
    cxcywh = torch.tensor([[[20.0, 40.0, 20.0, 40.0]], [[2.0, 1.0, 4.0, 2.0]]])
    assert torch.equal(xyxy_to_cxcywh(xyxy), cxcywh)
    assert torch.equal(cxcywh_to_xyxy(cxcywh), xyxy)


def test_pixels_and_normalised_non_square() -> None:
    boxes = torch.tensor([[20.0, 10.0, 100.0, 50.0]])  # image H=100, W=200
    normalised = torch.tensor([[0.1, 0.1, 0.5, 0.5]])
    torch.testing.assert_close(to_normalized(boxes, (100, 200)), normalised)
    torch.testing.assert_close(to_pixels(normalised, (100, 200)), boxes)
    # Per-box sizes as a tensor: (H, W) for each box.
    sizes = torch.tensor([[100.0, 200.0], [10.0, 10.0]])
    two = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5]])
    expected = torch.tensor([[20.0, 10.0, 100.0, 50.0], [1.0, 1.0, 5.0, 5.0]])
    torch.testing.assert_close(to_pixels(two, sizes), expected)


def test_box_iou_hand_matrix() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    # a0 & b0: inter 1, union 4 + 4 - 1 = 7; a1 inside b1: 1 / 4; disjoint: 0.
    expected = torch.tensor([[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]])
    torch.testing.assert_close(box_iou(a, b), expected)
    torch.testing.assert_close(matching_iou(a, b), expected)


def test_matching_iou_equals_torchvision() -> None:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen)
    a = torch.cat((xy, xy + torch.rand(50, 2, generator=gen) * 0.5), dim=1)
    xy = torch.rand(300, 2, generator=gen)
    b = torch.cat((xy, xy + torch.rand(300, 2, generator=gen) * 0.5), dim=1)
    assert torch.equal(matching_iou(a, b), torchvision.ops.box_iou(a, b))


def test_encode_by_hand() -> None:
    coder = BoxCoder((0.1, 0.2))
    prior = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.32, 0.4, 0.72, 0.6]])  # cxcywh (0.52, 0.5, 0.4, 0.2)
    # dx = 0.02 / (0.1 * 0.2) = 1; dy = 0; dw = log(0.4 / 0.2) / 0.2; dh = log(1) / 0.2 = 0.
    expected = torch.tensor([[1.0, 0.0, math.log(2) / 0.2, 0.0]])
    torch.testing.assert_close(coder.encode(gt, prior), expected)
    torch.testing.assert_close(coder.decode(expected, prior), gt)


def test_decode_broadcasts_batch_against_priors() -> None:
    coder = BoxCoder()
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.1, 0.4]])
    deltas = torch.zeros(3, 2, 4)
    boxes = coder.decode(deltas, priors)
    assert boxes.shape == (3, 2, 4)
    torch.testing.assert_close(boxes[2], cxcywh_to_xyxy(priors))


def test_decode_clamps_huge_deltas() -> None:
    coder = BoxCoder()
    prior = torch.tensor([[0.5, 0.5, 0.1, 0.1]])
    boxes = coder.decode(torch.tensor([[0.0, 0.0, 1e6, 1e4]]), prior)
    assert torch.isfinite(boxes).all()
    width = (boxes[0, 2] - boxes[0, 0]).item()
    assert width == pytest.approx(0.1 * 1000 / 16, rel=1e-5)  # log-scale clamped at log(1000/16)


def test_encode_zero_size_box_stays_finite() -> None:
    deltas = BoxCoder().encode(
        torch.tensor([[0.3, 0.3, 0.3, 0.5]]), torch.tensor([[0.3, 0.4, 0.1, 0.2]])
    )
    assert torch.isfinite(deltas).all()


coords = st.floats(min_value=0.0, max_value=0.875, allow_nan=False, width=32)
# At least 1/32: a gt/prior size ratio stays below the decoder's clamp of 1000/16 = 62.5,
# beyond which decode deliberately stops growing a box (tested separately).
sizes = st.floats(min_value=0.03125, max_value=1.0, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(coords, coords, sizes, sizes), min_size=1, max_size=8),
    st.lists(st.tuples(coords, coords, sizes, sizes), min_size=1, max_size=8),
    st.sampled_from([(0.1, 0.2), (1.0, 1.0)]),
)
def test_encode_decode_round_trip(gts: list, priors: list, variances: tuple) -> None:
    n = min(len(gts), len(priors))
    x, y, w, h = torch.tensor(gts[:n]).unbind(-1)
    gt_xyxy = torch.stack((x, y, x + w, y + h), dim=-1)
    px, py, pw, ph = torch.tensor(priors[:n]).unbind(-1)
    prior_cxcywh = torch.stack((px + pw / 2, py + ph / 2, pw, ph), dim=-1)
    coder = BoxCoder(variances)
    decoded = coder.decode(coder.encode(gt_xyxy, prior_cxcywh), prior_cxcywh)
    torch.testing.assert_close(decoded, gt_xyxy, rtol=1e-4, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(coords, coords, sizes, sizes), min_size=1, max_size=6))
def test_format_round_trip(raw: list) -> None:
    boxes = torch.tensor(raw)
    torch.testing.assert_close(xyxy_to_cxcywh(cxcywh_to_xyxy(boxes)), boxes, rtol=0, atol=1e-6)
