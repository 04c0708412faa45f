"""Batched SSD matching of ground truths to priors, and target encoding.

SSD section 2.2 ("Matching strategy"): each ground truth is matched to the prior with the best
Jaccard overlap (IoU), then every prior is matched to any ground truth with IoU above a threshold
(0.5). All images of a batch are matched at once: ground truths are padded to ``G`` per image with a
mask, and the IoUs of all real ground truths of the batch with the priors are computed together
(in chunks of priors of similar area, skipping the pairs whose area ratio already rules them out,
see ``_scan_priors``); no Python loop runs over images or cells.

Rules, in order (all deterministic):

1. Padded ground truths (mask False) never match.
2. A prior's candidate is its highest-IoU ground truth; on exact ties the lowest ground-truth index.
   It is matched if that IoU >= ``iou_threshold``, otherwise it is background.
3. Forced matches: every real ground truth claims its highest-IoU prior (lowest prior index on
   ties), even below the threshold, provided the IoU is > 0 (a ground truth that overlaps no prior
   at all, e.g. a zero-area box, cannot be matched meaningfully). A claimed prior is matched to its
   claimant whatever rule 2 said. When several ground truths claim the same prior, the one with the
   highest IoU with that prior wins; on exact ties the lowest ground-truth index. (ssd.pytorch lets
   the last claimant win instead; the loser keeps only its threshold matches, if any.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssdcli.boxes import BoxCoder, cxcywh_to_xyxy, matching_iou

__all__ = ["encode_matched", "encode_targets", "match", "object_balance_weights"]


# Matching works through the priors in chunks so that its (N x chunk) temporaries, N = real ground
# truths in the batch, stay small: cache-resident on CPU (several times faster there than passes
# over a whole (N, P) matrix) and bounded in memory for large N x P. On accelerators one chunk
# usually covers every prior. (CPU: 2^18 and 2^19 tied in benchmarks/bench_loss.py, 2^17 and
# 2^20 were slower.)
_CHUNK_ELEMENTS = {"cpu": 1 << 18, "other": 1 << 25}
_MIN_CHUNK = 128  # priors; fewer would make per-chunk overhead dominate
# Rule 2 packs (IoU bits << 16 | inverted ground-truth slot) into int64 keys: a plain max over
# keys gives the best IoU and, among equal IoUs, the lowest slot.
_SLOT_BITS = 16
_SLOT_MASK = (1 << _SLOT_BITS) - 1
# Rule 3 packs (IoU bits << 31 | inverted prior index) the same way: 31 bits hold any prior count.
_PRIOR_BITS = 31
_PRIOR_MASK = (1 << _PRIOR_BITS) - 1


def _prior_chunk(num_rows: int, num_priors: int, device: torch.device) -> int:
    """Priors per chunk for ``num_rows`` ground-truth rows (see ``_CHUNK_ELEMENTS``)."""
    budget = _CHUNK_ELEMENTS["cpu" if device.type == "cpu" else "other"]
    return max(1, min(num_priors, max(_MIN_CHUNK, budget // max(num_rows, 1))))


@torch.no_grad()
def match(
    gt_boxes_BG4: Tensor,
    gt_mask_BG: Tensor,
    priors_P4: Tensor,
    iou_threshold: float = 0.5,
) -> Tensor:
    """Match every prior of every image to one ground truth or to background.

    Args:
        gt_boxes_BG4 (Tensor[B, G, 4], float): normalised xyxy ground truths, padded per image.
        gt_mask_BG (Tensor[B, G], bool): True for real ground truths, False for padding.
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors.
        iou_threshold: minimum IoU for a non-forced match.

    Returns:
        Tensor[B, P] int64: index into G of the matched ground truth, -1 for background.
    """
    batch, num_gt = gt_mask_BG.shape
    num_priors = priors_P4.shape[0]
    device = priors_P4.device
    if num_gt == 0 or num_priors == 0:
        return torch.full((batch, num_priors), -1, dtype=torch.long, device=device)

    assert num_gt <= _SLOT_MASK, f"at most {_SLOT_MASK} ground truths per image"
    # The real ground truths of the whole batch, N = gt_mask_BG.sum(), and their rows in (B*G).
    # Matching runs in float32 (IoU bits are packed into int64 keys in rule 2).
    gts_N4 = gt_boxes_BG4[gt_mask_BG].float()
    rows_N = gt_mask_BG.flatten().nonzero().squeeze(1)
    best_prior_iou_N, best_prior_N, pairs = _scan_priors(
        gts_N4, cxcywh_to_xyxy(priors_P4.float()), iou_threshold
    )

    # Rule 2: each prior takes its best candidate pair in its image, by one scatter-max over
    # packed int64 keys (IoU bits, then inverted slot, so equal IoUs go to the lowest slot). A
    # non-negative float32 orders like its bit pattern read as an integer.
    n_idx, p_idx, iou = pairs
    slot = rows_N[n_idx] % num_gt
    flat = rows_N[n_idx] // num_gt * num_priors + p_idx
    key = _packed_key(iou, slot, _SLOT_BITS)
    matched_R = torch.full((batch * num_priors,), -1, dtype=torch.long, device=device)
    matched_R.scatter_reduce_(0, flat, key, "amax")
    wins = matched_R[flat] == key
    matched_R.fill_(-1)
    matched_R[flat[wins]] = slot[wins]
    matched_BP = matched_R.view(batch, num_priors)

    # Rule 3: each real ground truth with some overlap claims its best prior.
    claim_iou_BG = torch.full_like(gt_mask_BG, -1.0, dtype=best_prior_iou_N.dtype)
    claim_iou_BG[gt_mask_BG] = best_prior_iou_N
    best_prior_BG = torch.zeros_like(gt_mask_BG, dtype=torch.long)
    best_prior_BG[gt_mask_BG] = best_prior_N
    claims_BG = claim_iou_BG > 0
    # Winners' priors are distinct, so this assignment is deterministic.
    win_b, win_g = _claim_winners(best_prior_BG, claim_iou_BG, claims_BG).nonzero(as_tuple=True)
    matched_BP[win_b, best_prior_BG[win_b, win_g]] = win_g
    return matched_BP


def _scan_priors(
    gts_N4: Tensor, priors_xyxy_P4: Tensor, iou_threshold: float
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The parts of the IoU matrix of all real ground truths x all priors that matching needs.

    IoU is at most the ratio of the smaller to the larger area (the intersection is at most the
    smaller box, the union at least the larger one). So:

    1. The priors are visited in chunks of similar area (sorted by area), each against only the
       ground truths whose area bound reaches ``iou_threshold`` there: this finds every pair
       at or above the threshold (rule 2) while each box meets mostly priors of its own scale.
       A ground truth with such a pair has its best prior among its pairs (rule 3).
    2. The ground truths without any (small, thin or odd-shaped boxes: 42 of the 214 random
       boxes of ``benchmarks/bench_loss.py``) are scanned against every prior for their best one.

    The result is the same as a full scan of the IoU matrix.

    Args:
        gts_N4 (Tensor[N, 4], float32): normalised xyxy ground truths of the whole batch.
        priors_xyxy_P4 (Tensor[P, 4], float32): normalised xyxy priors.
        iou_threshold: IoU for rule-2 candidate pairs.

    Returns:
        best_prior_iou_N, best_prior_N: each ground truth's best IoU and its prior (lowest prior
        index on ties); pairs ``(n, p, iou)``: every pair with IoU >= ``iou_threshold``.
    """
    num_gts, num_priors = gts_N4.shape[0], priors_xyxy_P4.shape[0]
    device = gts_N4.device
    prior_area_P = _areas(priors_xyxy_P4)
    order_P = prior_area_P.argsort()
    sorted_priors_P4, sorted_area_P = priors_xyxy_P4[order_P], prior_area_P[order_P]
    gt_area_N = _areas(gts_N4)
    # The bounds are float32 like the IoU itself: a hair of slack keeps a rounding difference
    # from ever dropping a pair.
    reach = iou_threshold * (1.0 - 1e-5)
    chunk = _prior_chunk(num_gts, num_priors, device)
    pair_n, pair_p, pair_iou = [], [], []
    for start in range(0, num_priors, chunk):
        chunk_area_S = sorted_area_P[start : start + chunk]
        rows = (_area_ratio_bound(gt_area_N, chunk_area_S) >= reach).nonzero().squeeze(1)
        if not len(rows):
            continue
        iou_rS = matching_iou(gts_N4[rows], sorted_priors_P4[start : start + chunk])
        r_idx, s_idx = (iou_rS >= iou_threshold).nonzero(as_tuple=True)
        pair_n.append(rows[r_idx])
        pair_p.append(order_P[start + s_idx])
        pair_iou.append(iou_rS[r_idx, s_idx])
    empty = torch.zeros(0, dtype=torch.long, device=device)
    pairs = (
        torch.cat([empty, *pair_n]),
        torch.cat([empty, *pair_p]),
        torch.cat([gts_N4.new_zeros(0), *pair_iou]),
    )

    # Rule 3 for ground truths with pairs: the best pair by one scatter-max over packed int64
    # keys (IoU bits, then inverted prior index, so equal IoUs go to the lowest index).
    n_idx, p_idx, iou = pairs
    key = _packed_key(iou, p_idx, _PRIOR_BITS)
    best_key_N = torch.full((num_gts,), -1, dtype=torch.long, device=device)
    best_key_N.scatter_reduce_(0, n_idx, key, "amax")
    has_pair_N = best_key_N >= 0
    best_prior_N = torch.where(has_pair_N, _PRIOR_MASK - (best_key_N & _PRIOR_MASK), 0)
    best_prior_iou_N = torch.where(
        has_pair_N, (best_key_N >> _PRIOR_BITS).int().view(torch.float32), -1.0
    )
    # Pass 2: the rest against every prior, a few rows at a time.
    rest_M = (~has_pair_N).nonzero().squeeze(1)
    row_step = max(1, _CHUNK_ELEMENTS["cpu" if device.type == "cpu" else "other"] // num_priors)
    for first in range(0, len(rest_M), row_step):
        rows = rest_M[first : first + row_step]
        best_r, index_r = matching_iou(gts_N4[rows], priors_xyxy_P4).max(dim=1)
        best_prior_iou_N[rows], best_prior_N[rows] = best_r, index_r
    return best_prior_iou_N, best_prior_N, pairs


def _packed_key(iou_M: Tensor, index_M: Tensor, index_bits: int) -> Tensor:
    """int64 keys ``IoU bits << index_bits | (mask - index)``: a max over keys picks the highest
    IoU and, among equal IoUs, the lowest index (a non-negative float32 orders like its bit
    pattern read as an integer). Tensor[M] for IoUs and indices Tensor[M]."""
    key_M = iou_M.view(torch.int32).long().bitwise_left_shift_(index_bits)
    return key_M.bitwise_or_(((1 << index_bits) - 1) - index_M)


def _areas(boxes_N4: Tensor) -> Tensor:
    """Areas of xyxy boxes (Tensor[N]), 0 for degenerate ones."""
    width_N = (boxes_N4[:, 2] - boxes_N4[:, 0]).clamp(min=0)
    return width_N * (boxes_N4[:, 3] - boxes_N4[:, 1]).clamp(min=0)


def _area_ratio_bound(gt_area_N: Tensor, chunk_area_S: Tensor) -> Tensor:
    """The most IoU each ground truth can have with any box of a chunk, from areas alone:
    ``min(a, b) / max(a, b)`` at the chunk's area closest to the ground truth's (Tensor[N])."""
    nearest_N = gt_area_N.clamp(min=chunk_area_S.min(), max=chunk_area_S.max())
    larger_N = torch.maximum(gt_area_N, nearest_N).clamp(min=torch.finfo(gt_area_N.dtype).tiny)
    return torch.minimum(gt_area_N, nearest_N) / larger_N


def _claim_winners(best_prior_BG: Tensor, claim_iou_BG: Tensor, claims_BG: Tensor) -> Tensor:
    """Which forced claims win their prior (highest IoU among its claimants, then lowest index).

    Works on (B, G, G) comparisons of the claims only, never on priors.

    Returns:
        Tensor[B, G] bool: True where ground truth g claims a prior and wins it.
    """
    num_gt = claims_BG.shape[1]
    index_G = torch.arange(num_gt, device=claims_BG.device)
    # [b, g, h]: does claimant h beat claimant g for g's prior?
    same_prior_BGG = best_prior_BG.unsqueeze(2) == best_prior_BG.unsqueeze(1)
    iou_g, iou_h = claim_iou_BG.unsqueeze(2), claim_iou_BG.unsqueeze(1)
    h_first_GG = index_G.unsqueeze(0) < index_G.unsqueeze(1)
    stronger_BGG = (iou_h > iou_g) | ((iou_h == iou_g) & h_first_GG)
    beaten_BG = (same_prior_BGG & claims_BG.unsqueeze(1) & stronger_BGG).any(dim=2)
    return claims_BG & ~beaten_BG


@torch.no_grad()
def encode_targets(
    gt_boxes_BG4: Tensor,
    gt_labels_BG: Tensor,
    gt_mask_BG: Tensor,
    priors_P4: Tensor,
    coder: BoxCoder,
    iou_threshold: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Per-prior classification and regression targets for a batch (:func:`match`, then
    :func:`encode_matched`).

    Args:
        gt_boxes_BG4 (Tensor[B, G, 4], float): normalised xyxy ground truths, padded per image.
        gt_labels_BG (Tensor[B, G], int64): foreground class index 0..C-1 (padding: any value).
        gt_mask_BG (Tensor[B, G], bool): True for real ground truths.
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors.
        coder: the box coder (variances).
        iou_threshold: minimum IoU for a non-forced match (see module docstring).

    Returns:
        ``(labels_BP, deltas_BP4)`` as :func:`encode_matched` gives them. No autograd.
    """
    matched_BP = match(gt_boxes_BG4, gt_mask_BG, priors_P4, iou_threshold)
    return encode_matched(matched_BP, gt_boxes_BG4, gt_labels_BG, priors_P4, coder)


@torch.no_grad()
def encode_matched(
    matched_BP: Tensor,
    gt_boxes_BG4: Tensor,
    gt_labels_BG: Tensor,
    priors_P4: Tensor,
    coder: BoxCoder,
) -> tuple[Tensor, Tensor]:
    """Classification and regression targets from a :func:`match` result.

    Args:
        matched_BP (Tensor[B, P], int64): matched ground-truth index per prior, -1 = background.
        gt_boxes_BG4 (Tensor[B, G, 4], float): normalised xyxy ground truths, padded per image.
        gt_labels_BG (Tensor[B, G], int64): foreground class index 0..C-1 (padding: any value).
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors.
        coder: the box coder (variances).

    Returns:
        labels_BP (Tensor[B, P], int64): 0 for background, else class index + 1 (the only place
        the +1 happens); deltas_BP4 (Tensor[B, P, 4], dtype of the boxes): encoded matched ground
        truth at positives, 0 at background priors. No autograd.
    """
    batch, num_priors = matched_BP.shape
    labels_BP = torch.zeros_like(matched_BP)
    deltas_BP4 = gt_boxes_BG4.new_zeros(batch, num_priors, 4)
    # Encode the positives only (a few per cent of the priors).
    pos_b, pos_p = (matched_BP >= 0).nonzero(as_tuple=True)
    pos_g = matched_BP[pos_b, pos_p]
    labels_BP[pos_b, pos_p] = gt_labels_BG[pos_b, pos_g].long() + 1
    priors = priors_P4.to(gt_boxes_BG4.dtype)[pos_p]
    deltas_BP4[pos_b, pos_p] = coder.encode(gt_boxes_BG4[pos_b, pos_g], priors)
    return labels_BP, deltas_BP4


@torch.no_grad()
def object_balance_weights(matched_BP: Tensor, num_gt: int, power: float) -> Tensor:
    """Raw per-prior loss weights that even out how much each object counts.

    SSD weighs every positive prior alike, so an object counts in proportion to the priors it
    matches: on the synthetic shapes a large one matches ~15, a 10-20 px one 1-6. A positive prior
    of a ground truth matched by ``n`` priors gets ``n ** -power``: 0 is SSD's uniform weighting,
    1 gives every object the same total weight.

    Args:
        matched_BP (Tensor[B, P], int64): :func:`match` result, -1 = background.
        num_gt: G, the padded ground-truth count per image (``matched_BP < G``).
        power: the exponent, >= 0.

    Returns:
        Tensor[B, P] float32: ``n ** -power`` at positives, 0 at background priors. Not
        normalised: the caller scales them (``MultiBoxLoss`` expects them to sum to N, the
        positive count, so that the loss keeps its scale).
    """
    batch = matched_BP.shape[0]
    positive_BP = matched_BP >= 0
    # One bin per (image, ground truth): count the priors each ground truth matched.
    slot_BP = torch.arange(batch, device=matched_BP.device).unsqueeze(1) * num_gt + matched_BP
    slots = slot_BP[positive_BP]
    counts = torch.bincount(slots, minlength=batch * num_gt).to(torch.float32)
    weights_BP = torch.zeros(matched_BP.shape, dtype=torch.float32, device=matched_BP.device)
    weights_BP[positive_BP] = counts[slots].pow(-power)
    return weights_BP
