"""Matcher: hand-made cases, a per-image loop reference, and properties."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdcli import matcher
from ssdcli.boxes import BoxCoder, cxcywh_to_xyxy, xyxy_to_cxcywh
from ssdcli.matcher import encode_matched, encode_targets, match, object_balance_weights


@contextmanager
def prior_chunks_of(size: int) -> Iterator[None]:
    """Force the matcher to work through the priors ``size`` at a time."""
    saved = dict(matcher._CHUNK_ELEMENTS), matcher._MIN_CHUNK
    matcher._CHUNK_ELEMENTS.update(cpu=1, other=1)
    matcher._MIN_CHUNK = size
    try:
        yield
    finally:
        matcher._CHUNK_ELEMENTS.update(saved[0])
        matcher._MIN_CHUNK = saved[1]


def strips(*spans: tuple[float, float]) -> torch.Tensor:
    """Full-height boxes (x1, 0, x2, 1) as normalised xyxy: their IoU is 1-D interval IoU."""
    return torch.tensor([[x1, 0.0, x2, 1.0] for x1, x2 in spans])


def priors_from(*spans: tuple[float, float]) -> torch.Tensor:
    return xyxy_to_cxcywh(strips(*spans))


def one_image(gts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return gts.unsqueeze(0), torch.ones(1, len(gts), dtype=torch.bool)


def test_threshold_is_inclusive() -> None:
    # gt [0, .25]: prior [0, .25] IoU 1 (best); [0, .5] IoU .5 exactly; [0, .5078] .492; far one 0.
    priors = priors_from((0, 0.25), (0, 0.5), (0, 0.5078125), (0.5, 1))
    gts, mask = one_image(strips((0, 0.25)))
    assert match(gts, mask, priors, 0.5).tolist() == [[0, 0, -1, -1]]


def test_forced_best_prior_below_threshold() -> None:
    # gt [0, .125] overlaps prior [0, .5] with IoU .25 only: it still gets that prior.
    priors = priors_from((0, 0.5), (0.5, 1))
    gts, mask = one_image(strips((0, 0.125)))
    assert match(gts, mask, priors, 0.5).tolist() == [[0, -1]]


def test_forced_match_overrides_threshold_match() -> None:
    # Prior 0 [0, .5]: IoU .6 with gt A [0, .3] but it is gt B's [.25, .5] best prior (IoU .5);
    # A has its own best prior 2 [0, .3]. Forced claims win, as in the SSD matching strategy.
    priors = priors_from((0, 0.5), (0.5, 1), (0, 0.3))
    gts, mask = one_image(strips((0, 0.3), (0.25, 0.5)))
    assert match(gts, mask, priors, 0.5).tolist() == [[1, -1, 0]]


def test_two_claims_on_one_prior_highest_iou_wins() -> None:
    # Both gts' best prior is 0 [0, .5]: gt 0 [0, .25] IoU .5, gt 1 [0, .375] IoU .75 -> gt 1.
    priors = priors_from((0, 0.5), (0.5, 1))
    gts, mask = one_image(strips((0, 0.25), (0, 0.375)))
    assert match(gts, mask, priors, 0.9).tolist() == [[1, -1]]
    # Swapping the order changes nothing: the rule is by IoU, not by position.
    gts, mask = one_image(strips((0, 0.375), (0, 0.25)))
    assert match(gts, mask, priors, 0.9).tolist() == [[0, -1]]


def test_ties_are_deterministic() -> None:
    # Identical gts claim the same prior with equal IoU: the lowest index wins.
    priors = priors_from((0, 0.5), (0.5, 1))
    gts, mask = one_image(strips((0, 0.25), (0, 0.25)))
    assert match(gts, mask, priors, 0.9).tolist() == [[0, -1]]
    # A gt equally overlapping two priors (1/3 each) is forced onto the first one.
    gts, mask = one_image(strips((0.25, 0.75)))
    assert match(gts, mask, priors, 0.5).tolist() == [[0, -1]]
    # A prior equally overlapping two gts above threshold takes the lower gt index.
    priors = priors_from((0.25, 0.75), (0.125, 0.625), (0.375, 0.875))
    gts, mask = one_image(strips((0.125, 0.625), (0.375, 0.875)))
    assert match(gts, mask, priors, 0.5).tolist() == [[0, 0, 1]]


def test_empty_images_and_padding() -> None:
    priors = priors_from((0, 0.5), (0.5, 1))
    # Image 0: one gt; image 1: only padding, which copies a prior exactly and must not match.
    gts = torch.stack((strips((0, 0.5), (0, 0)), strips((0.5, 1), (0, 0.5))))
    mask = torch.tensor([[True, False], [False, False]])
    labels = torch.tensor([[4, 7], [2, 3]])
    assert match(gts, mask, priors, 0.5).tolist() == [[0, -1], [-1, -1]]
    labels_BP, deltas_BP4 = encode_targets(gts, labels, mask, priors, BoxCoder(), 0.5)
    assert labels_BP.tolist() == [[5, 0], [0, 0]]
    assert torch.equal(deltas_BP4[1], torch.zeros(2, 4))
    assert torch.equal(deltas_BP4[0, 0], torch.zeros(4))  # gt equals the prior
    # Only padding in the whole batch (G > 0, no real ground truth).
    assert match(gts, torch.zeros_like(mask), priors, 0.5).tolist() == [[-1, -1], [-1, -1]]
    # No ground truths at all in the batch (G = 0).
    labels_BP, deltas_BP4 = encode_targets(
        torch.zeros(2, 0, 4),
        torch.zeros(2, 0, dtype=torch.long),
        torch.zeros(2, 0, dtype=torch.bool),
        priors,
        BoxCoder(),
        0.5,
    )
    assert labels_BP.shape == (2, 2) and not labels_BP.any()
    assert deltas_BP4.shape == (2, 2, 4) and not deltas_BP4.any()


def test_zero_area_gt_gets_no_forced_match() -> None:
    priors = priors_from((0, 0.5), (0.5, 1))
    gts, mask = one_image(torch.tensor([[0.2, 0.2, 0.2, 0.2]]))
    assert match(gts, mask, priors, 0.5).tolist() == [[-1, -1]]


def test_encode_targets_labels_and_deltas() -> None:
    priors = priors_from((0, 0.5), (0.5, 1))
    gts, mask = one_image(strips((0.5, 0.875)))
    labels_BP, deltas_BP4 = encode_targets(gts, torch.tensor([[0]]), mask, priors, BoxCoder(), 0.5)
    assert labels_BP.tolist() == [[0, 1]]  # class 0 -> label 1; background 0
    # Prior 1 cxcywh (.75, .5, .5, 1); gt (.6875, .5, .375, 1):
    # dx = -.0625 / (.1 * .5) = -1.25; dw = log(.75) / .2.
    expected = torch.tensor([-1.25, 0.0, torch.log(torch.tensor(0.75)).item() / 0.2, 0.0])
    torch.testing.assert_close(deltas_BP4[0, 1], expected)


def reference_match(gts: torch.Tensor, priors_xyxy: torch.Tensor, threshold: float) -> list[int]:
    """The documented rules, one image, plain loops."""
    iou = torchvision.ops.box_iou(gts, priors_xyxy).tolist()
    num_p = priors_xyxy.shape[0]
    matched = [-1] * num_p
    for p in range(num_p):
        column = [row[p] for row in iou]
        if column:
            best = max(range(len(column)), key=lambda g: (column[g], -g))
            if column[best] >= threshold:
                matched[p] = best
    claims: dict[int, int] = {}
    for g, row in enumerate(iou):
        p = max(range(num_p), key=lambda q: (row[q], -q))
        if row[p] > 0 and (p not in claims or row[p] > iou[claims[p]][p]):
            claims[p] = g
    for p, g in claims.items():
        matched[p] = g
    return matched


unit = st.floats(min_value=0.0, max_value=0.75, width=32)
extent = st.floats(min_value=0.0625, max_value=0.5, width=32)
box = st.tuples(unit, unit, extent, extent)


def to_xyxy(raw: list) -> torch.Tensor:
    t = torch.tensor(raw, dtype=torch.float32).view(-1, 4)
    return torch.cat((t[:, :2], t[:, :2] + t[:, 2:]), dim=1)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.lists(box, max_size=4), min_size=1, max_size=3),
    st.lists(box, min_size=1, max_size=12),
    st.sampled_from([0.3, 0.5]),
    st.sampled_from([1, 3, 1000]),
)
def test_batched_equals_per_image_reference(
    images: list, raw_priors: list, threshold: float, chunk: int
) -> None:
    priors_xyxy = to_xyxy(raw_priors)
    priors = xyxy_to_cxcywh(priors_xyxy)
    num_g = max(len(gts) for gts in images)
    gts_BG4 = torch.zeros(len(images), num_g, 4)
    mask_BG = torch.zeros(len(images), num_g, dtype=torch.bool)
    labels_BG = torch.zeros(len(images), num_g, dtype=torch.long)
    for b, gts in enumerate(images):
        gts_BG4[b, : len(gts)] = to_xyxy(gts)
        mask_BG[b, : len(gts)] = True
        labels_BG[b, : len(gts)] = torch.arange(len(gts)) % 3
    with prior_chunks_of(chunk):
        matched = match(gts_BG4, mask_BG, priors, threshold)
    for b, gts in enumerate(images):
        expected = reference_match(to_xyxy(gts), cxcywh_to_xyxy(priors), threshold)
        assert matched[b].tolist() == expected

    coder = BoxCoder()
    labels_BP, deltas_BP4 = encode_targets(gts_BG4, labels_BG, mask_BG, priors, coder, threshold)
    assert ((labels_BP >= 0) & (labels_BP <= 3)).all()
    assert torch.equal(labels_BP > 0, matched >= 0)
    assert torch.equal(deltas_BP4[labels_BP == 0], torch.zeros(int((labels_BP == 0).sum()), 4))
    # Decoding the targets at positives gives back the matched ground-truth boxes.
    pos_b, pos_p = (matched >= 0).nonzero(as_tuple=True)
    decoded = coder.decode(deltas_BP4[pos_b, pos_p], priors[pos_p])
    expected_boxes = gts_BG4[pos_b, matched[pos_b, pos_p]]
    torch.testing.assert_close(decoded, expected_boxes, rtol=1e-4, atol=1e-5)


# A few boxes on a coarse grid: priors repeat and IoUs tie exactly, across different areas too.
grid_box = st.tuples(
    st.sampled_from([0.0, 0.125, 0.25, 0.5]),
    st.sampled_from([0.0, 0.25, 0.5]),
    st.sampled_from([0.125, 0.25, 0.5]),
    st.sampled_from([0.25, 0.5]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(grid_box, min_size=1, max_size=5), min_size=1, max_size=3),
    st.lists(grid_box, min_size=1, max_size=16),
    st.sampled_from([0.2, 0.5, 0.7]),
    st.sampled_from([1, 2, 5, 1000]),
)
def test_ties_between_repeated_priors_follow_the_rules(
    images: list, raw_priors: list, threshold: float, chunk: int
) -> None:
    # Matching visits priors sorted by area and skips pairs that the area ratio rules out:
    # neither may change which prior wins a tie (the lowest index) or which pairs are found.
    priors = xyxy_to_cxcywh(to_xyxy(raw_priors))
    num_g = max(len(gts) for gts in images)
    gts_BG4 = torch.zeros(len(images), num_g, 4)
    mask_BG = torch.zeros(len(images), num_g, dtype=torch.bool)
    for b, gts in enumerate(images):
        gts_BG4[b, : len(gts)] = to_xyxy(gts)
        mask_BG[b, : len(gts)] = True
    with prior_chunks_of(chunk):
        matched = match(gts_BG4, mask_BG, priors, threshold)
    for b, gts in enumerate(images):
        expected = reference_match(to_xyxy(gts), cxcywh_to_xyxy(priors), threshold)
        assert matched[b].tolist() == expected


def test_chunked_matching_equals_single_chunk_on_ssd300_priors() -> None:
    from ssdcli.priors import LevelSpec, make_priors

    sides, steps = (38, 19, 10, 5, 3, 1), (8, 16, 32, 64, 100, 300)
    mins, maxs = (30, 60, 111, 162, 213, 264), (60, 111, 162, 213, 264, 315)
    ratios = ((2.0,), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0,), (2.0,))
    levels = [
        LevelSpec((f, f), (float(s), float(s)), float(lo), float(hi), r)
        for f, s, lo, hi, r in zip(sides, steps, mins, maxs, ratios, strict=True)
    ]
    priors = make_priors(levels, (300, 300))
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(4, 7, 2, generator=gen) * 0.8
    gts = torch.cat((xy, xy + 0.02 + torch.rand(4, 7, 2, generator=gen) * 0.5), dim=-1)
    mask = torch.rand(4, 7, generator=gen) < 0.7
    with prior_chunks_of(100_000):
        whole = match(gts, mask, priors, 0.5)
    with prior_chunks_of(333):
        chunked = match(gts, mask, priors, 0.5)
    assert torch.equal(whole, chunked)
    assert (whole >= 0).sum() > int(mask.sum())  # some threshold matches beyond forced ones


def test_object_balance_weights_hand_case() -> None:
    # Image 0: ground truth 0 has priors 0 and 1, ground truth 1 has prior 2; image 1: slot 0
    # has prior 1. Slot 1 of image 1 is padding (matches nothing).
    matched = torch.tensor([[0, 0, 1, -1], [-1, 0, -1, -1]])
    assert torch.equal(
        object_balance_weights(matched, 2, 1.0),
        torch.tensor([[0.5, 0.5, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]),
    )
    assert torch.equal(object_balance_weights(matched, 2, 0.0), (matched >= 0).to(torch.float32))
    half = object_balance_weights(matched, 2, 0.5)
    torch.testing.assert_close(half[0, :2], torch.full((2,), 2**-0.5))


@given(
    matched_list=st.lists(
        st.lists(st.integers(min_value=-1, max_value=3), min_size=6, max_size=6),
        min_size=1,
        max_size=3,
    ),
    power=st.floats(min_value=0.0, max_value=1.0),
)
@settings(max_examples=60, deadline=None)
def test_object_balance_weights_give_each_object_n_to_one_minus_p(
    matched_list: list[list[int]], power: float
) -> None:
    matched = torch.tensor(matched_list)
    weights = object_balance_weights(matched, 4, power)
    assert torch.equal(weights > 0, matched >= 0)
    for b in range(matched.shape[0]):
        for g in range(4):
            mine = matched[b] == g
            n = int(mine.sum())
            if n:  # an object's total weight is n * n^-p
                total = float(weights[b][mine].sum())
                assert abs(total - n ** (1 - power)) < 1e-5 * n


def test_encode_targets_equals_match_then_encode_matched() -> None:
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(2, 3, 2, generator=gen) * 0.6
    gts = torch.cat([xy, xy + 0.1 + torch.rand(2, 3, 2, generator=gen) * 0.3], dim=2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    labels = torch.randint(0, 4, (2, 3), generator=gen)
    priors = xyxy_to_cxcywh(
        torch.rand(50, 2, generator=gen).repeat(1, 2) + torch.tensor([-0.1, -0.1, 0.1, 0.1])
    )
    coder = BoxCoder()
    together = encode_targets(gts, labels, mask, priors, coder, 0.4)
    matched = match(gts, mask, priors, 0.4)
    apart = encode_matched(matched, gts, labels, priors, coder)
    assert torch.equal(together[0], apart[0]) and torch.equal(together[1], apart[1])
