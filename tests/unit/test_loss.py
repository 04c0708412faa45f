"""MultiBox loss: a hand-worked case, a per-image reference, zero positives, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ssdcli import loss as loss_module
from ssdcli.loss import LossParts, MultiBoxLoss, background_loss, hard_negative_mask


def test_hand_worked_case() -> None:
    # One image, 4 priors, K = 2 (background + 1 class); prior 0 positive; ratio 2 -> 2 negatives.
    logits = torch.tensor(
        [
            [
                [0.0, 0.0],  # positive, target 1: CE = ln 2
                [0.0, 0.0],  # negative, background CE = ln 2
                [0.0, math.log(3)],  # negative, p_bg = 1/4: CE = ln 4 (hardest)
                [math.log(2), 0.0],  # negative, p_bg = 2/3: CE = ln 1.5 (easiest, dropped)
            ]
        ]
    )
    labels = torch.tensor([[1, 0, 0, 0]])
    predicted = torch.tensor(
        [[[0.5, -2.0, 0.0, 1.0], [9.0, 9.0, 9.0, 9.0], [5, 5, 5, 5], [7, 7, 7, 7]]]
    )
    targets = torch.zeros(1, 4, 4)
    parts = MultiBoxLoss(neg_pos_ratio=2.0)(logits, predicted, labels, targets)
    # Smooth L1 (beta 1): 0.5 * 0.25 + (2 - 0.5) + 0 + 0.5 * 1 = 2.125; N = 1.
    assert parts.box.item() == pytest.approx(2.125)
    assert parts.cls.item() == pytest.approx(math.log(2) + math.log(4) + math.log(2))
    assert parts.total.item() == pytest.approx(2.125 + math.log(16))
    assert parts.num_pos.item() == 1


def reference_loss(
    logits, deltas, labels, targets, ratio: float, weights=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Straightforward per-image implementation of SSD's loss (``weights``: per-prior weights of
    the positives' terms, None = 1)."""
    box_sum = logits.new_zeros(())
    cls_sum = logits.new_zeros(())
    total_pos = 0
    for b in range(logits.shape[0]):
        pos = labels[b] > 0
        num_pos = int(pos.sum())
        total_pos += num_pos
        w = torch.ones(num_pos) if weights is None else weights[b][pos]
        box_terms = F.smooth_l1_loss(deltas[b][pos], targets[b][pos], reduction="none").sum(1)
        box_sum = box_sum + (box_terms * w).sum()
        ce = F.cross_entropy(logits[b], labels[b], reduction="none")
        neg_idx = (~pos).nonzero().squeeze(1)
        num_neg = min(int(num_pos * ratio), len(neg_idx))
        order = torch.argsort(ce.detach()[neg_idx], descending=True)[:num_neg]
        cls_sum = cls_sum + (ce[pos] * w).sum() + ce[neg_idx[order]].sum()
    n = max(total_pos, 1)
    return box_sum / n, cls_sum / n


@pytest.mark.parametrize("ratio", [3.0, 1.5])
def test_matches_per_image_reference_values_and_gradients(ratio: float) -> None:
    gen = torch.Generator().manual_seed(0)
    batch, num_p, num_k = 4, 50, 6
    labels = torch.zeros(batch, num_p, dtype=torch.long)
    labels[0, :3] = torch.tensor([1, 4, 2])  # 3 positives, 9 (or 4) negatives
    labels[1, 10:40] = 3  # 30 positives: quota 90 (or 45) capped at the 20 negatives
    # image 2: no positives (contributes no negatives); image 3: one positive
    labels[3, 49] = 5
    logits = torch.randn(batch, num_p, num_k, generator=gen) * 3
    deltas = torch.randn(batch, num_p, 4, generator=gen)
    targets = torch.randn(batch, num_p, 4, generator=gen)

    ours_l, ours_d = logits.clone().requires_grad_(), deltas.clone().requires_grad_()
    parts = MultiBoxLoss(ratio)(ours_l, ours_d, labels, targets)
    parts.total.backward()
    ref_l, ref_d = logits.clone().requires_grad_(), deltas.clone().requires_grad_()
    ref_box, ref_cls = reference_loss(ref_l, ref_d, labels, targets, ratio)
    (ref_box + ref_cls).backward()

    assert parts.num_pos.item() == 34
    torch.testing.assert_close(parts.box, ref_box)
    torch.testing.assert_close(parts.cls, ref_cls)
    torch.testing.assert_close(ours_l.grad, ref_l.grad)
    torch.testing.assert_close(ours_d.grad, ref_d.grad)
    # The image without positives gets no gradient at all.
    assert not ours_l.grad[2].any()


def test_positive_weights_match_reference_and_ones_change_nothing() -> None:
    gen = torch.Generator().manual_seed(1)
    batch, num_p, num_k = 3, 40, 5
    labels = torch.zeros(batch, num_p, dtype=torch.long)
    labels[0, :5] = 2
    labels[1, 7:9] = torch.tensor([1, 4])
    labels[2, 39] = 3
    logits = torch.randn(batch, num_p, num_k, generator=gen) * 2
    deltas = torch.randn(batch, num_p, 4, generator=gen)
    targets = torch.randn(batch, num_p, 4, generator=gen)
    weights = torch.rand(batch, num_p, generator=gen) * 3 * (labels > 0)

    ours_l, ours_d = logits.clone().requires_grad_(), deltas.clone().requires_grad_()
    parts = MultiBoxLoss(3.0)(ours_l, ours_d, labels, targets, weights)
    parts.total.backward()
    ref_l, ref_d = logits.clone().requires_grad_(), deltas.clone().requires_grad_()
    ref_box, ref_cls = reference_loss(ref_l, ref_d, labels, targets, 3.0, weights)
    (ref_box + ref_cls).backward()
    torch.testing.assert_close(parts.box, ref_box)
    torch.testing.assert_close(parts.cls, ref_cls)
    torch.testing.assert_close(ours_l.grad, ref_l.grad)
    torch.testing.assert_close(ours_d.grad, ref_d.grad)

    unweighted = MultiBoxLoss(3.0)(logits, deltas, labels, targets)
    ones = MultiBoxLoss(3.0)(logits, deltas, labels, targets, (labels > 0).float())
    torch.testing.assert_close(ones.total, unweighted.total)
    assert not torch.allclose(parts.total, unweighted.total)


def test_zero_positives_is_finite_zero() -> None:
    logits = torch.randn(2, 10, 3, requires_grad=True)
    deltas = torch.randn(2, 10, 4, requires_grad=True)
    labels = torch.zeros(2, 10, dtype=torch.long)
    parts = MultiBoxLoss()(logits, deltas, labels, torch.full((2, 10, 4), float("inf")))
    assert isinstance(parts, LossParts)
    assert parts.total.item() == 0.0 and parts.box.item() == 0.0 and parts.cls.item() == 0.0
    assert parts.num_pos.item() == 0
    parts.total.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert torch.equal(deltas.grad, torch.zeros_like(deltas))


def test_gradients_finite_with_extreme_logits_and_half_precision() -> None:
    logits = torch.randn(2, 30, 4) * 200
    logits = logits.to(torch.bfloat16).requires_grad_()
    deltas = (torch.randn(2, 30, 4) * 1e3).requires_grad_()
    labels = torch.randint(0, 4, (2, 30))
    parts = MultiBoxLoss()(logits, deltas, labels, torch.zeros(2, 30, 4))
    assert parts.total.dtype == torch.float32
    assert torch.isfinite(parts.total)
    parts.total.backward()
    assert torch.isfinite(logits.grad.float()).all() and torch.isfinite(deltas.grad).all()


def test_background_loss_equals_log_softmax_and_saturates() -> None:
    logits = torch.randn(3, 1000, 7) * 5
    expected = -torch.log_softmax(logits, dim=-1)[..., 0]
    saved = dict(loss_module._SCORE_CHUNK_ROWS)
    loss_module._SCORE_CHUNK_ROWS.update(cpu=333)  # several chunks, a partial last one
    try:
        torch.testing.assert_close(background_loss(logits), expected, rtol=1e-5, atol=1e-5)
    finally:
        loss_module._SCORE_CHUNK_ROWS.update(saved)
    extreme = torch.tensor([[[1e4, 0.0], [-1e4, 0.0], [0.0, 1e4], [1e30, 1e30]]])
    scores = background_loss(extreme)
    assert torch.isfinite(scores).all()
    assert scores[0, 0] < 1e-6 and scores[0, 2] > 79  # easy stays easy, hard saturates near 80
    # Many classes, every one far above the background: the sum of clamped terms fits float32.
    many = torch.full((1, 2, 300), 1e4)
    many[..., 0] = 0.0
    assert torch.isfinite(background_loss(many)).all()


def test_hard_negative_mask_quota_and_cap() -> None:
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    positive = torch.tensor([[True, False, False, False, False, False], [True] * 4 + [False] * 2])
    mask = hard_negative_mask(scores, positive, 2.0)
    # Image 0: 1 positive -> the 2 hardest negatives (the positive's own score is ignored).
    assert mask[0].tolist() == [False, True, True, False, False, False]
    # Image 1: 4 positives want 8 negatives, capped at the 2 available.
    assert mask[1].tolist() == [False, False, False, False, True, True]
