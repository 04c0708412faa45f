"""Batched SSD matching of ground truths to priors, and target encoding.

SSD section 2.2 ("Matching strategy"): each ground truth is matched to the prior with the best
Jaccard overlap (IoU), then every prior is matched to any ground truth with IoU above a threshold
(0.5). All images of a batch are matched at once: ground truths are padded to ``G`` per image with a
mask, one IoU tensor ``(B, G, P)`` is computed, and no Python loop runs over images or priors.

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

__all__ = ["encode_targets", "match"]


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

    priors_xyxy_P4 = cxcywh_to_xyxy(priors_P4).to(gt_boxes_BG4.dtype)
    # One IoU matrix for the real ground truths of the whole batch, scattered into (B, G, P);
    # padding gets -1 so it loses every comparison (real IoUs are >= 0).
    iou_NP = matching_iou(gt_boxes_BG4[gt_mask_BG], priors_xyxy_P4)
    iou_BGP = iou_NP.new_full((batch, num_gt, num_priors), -1.0)
    iou_BGP[gt_mask_BG] = iou_NP

    # Rule 2 (torch.max returns the first index among equal maxima).
    best_gt_iou_BP, best_gt_BP = iou_BGP.max(dim=1)
    matched_BP = torch.where(best_gt_iou_BP >= iou_threshold, best_gt_BP, -1)

    # Rule 3: each real ground truth with some overlap claims its best prior.
    best_prior_iou_N, best_prior_N = iou_NP.max(dim=1)
    claim_iou_BG = torch.full_like(gt_mask_BG, -1.0, dtype=iou_NP.dtype)
    claim_iou_BG[gt_mask_BG] = best_prior_iou_N
    best_prior_BG = torch.zeros_like(gt_mask_BG, dtype=torch.long)
    best_prior_BG[gt_mask_BG] = best_prior_N
    claims_BG = claim_iou_BG > 0
    winner_BG = _claim_winners(best_prior_BG, claim_iou_BG, claims_BG)
    # Winners write their index at their prior; every other gt writes into a spare column P.
    target_BG = torch.where(winner_BG, best_prior_BG, num_priors)
    gt_index_BG = torch.arange(num_gt, device=device).expand(batch, -1)
    matched_BP1 = torch.cat((matched_BP, matched_BP.new_full((batch, 1), -1)), dim=1)
    matched_BP1.scatter_(1, target_BG, gt_index_BG)
    return matched_BP1[:, :num_priors]


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
    """Per-prior classification and regression targets for a batch.

    Args:
        gt_boxes_BG4 (Tensor[B, G, 4], float): normalised xyxy ground truths, padded per image.
        gt_labels_BG (Tensor[B, G], int64): foreground class index 0..C-1 (padding: any value).
        gt_mask_BG (Tensor[B, G], bool): True for real ground truths.
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors.
        coder: the box coder (variances).
        iou_threshold: minimum IoU for a non-forced match (see module docstring).

    Returns:
        labels_BP (Tensor[B, P], int64): 0 for background, else class index + 1 (the only place
        the +1 happens); deltas_BP4 (Tensor[B, P, 4], dtype of the boxes): encoded matched ground
        truth at positives, 0 at background priors. No autograd.
    """
    matched_BP = match(gt_boxes_BG4, gt_mask_BG, priors_P4, iou_threshold)
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
