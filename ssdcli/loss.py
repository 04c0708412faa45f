"""MultiBox loss with hard negative mining (SSD section 2.2, "Training objective").

``L = (L_conf + L_loc) / N`` where ``N`` is the number of positive (matched) priors in the batch:

* ``L_loc``: smooth L1 (beta = 1, summed) between predicted and target deltas over positives.
* ``L_conf``: softmax cross-entropy over positives and hard negatives. SSD section 2.2 ("Hard
  negative mining"): per image, the negatives are sorted by their confidence loss (the
  cross-entropy of the background class) and the highest ones are kept so that negatives:positives
  is at most ``neg_pos_ratio`` (3:1), capped at the negatives the image has.
* Optional per-prior weights of the positives' terms (``loss.object_balance``): SSD weighs every
  positive prior alike, so an object counts in proportion to the priors it matches. Negatives keep
  weight 1 and the normaliser stays ``N``.
* ``N = 0``: SSD eq. 1 sets the loss to 0. Here both parts are exact zeros that still depend on the
  inputs (finite, zero gradients, never NaN). An image without positives in a batch that has some
  contributes no negatives either (its quota is ``neg_pos_ratio * 0``), as in the reference
  implementations.

The whole batch is handled at once: background losses of every prior (without autograd) to rank
negatives, one ``topk`` for the mining, then the losses over the selected priors only; no Python
loop over images.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LossParts", "MultiBoxLoss", "background_loss", "hard_negative_mask"]


class LossParts(NamedTuple):
    """Scalar tensors: ``total = box + cls``; ``num_pos`` (int64) is N, the batch's positives."""

    total: Tensor
    box: Tensor
    cls: Tensor
    num_pos: Tensor


# Mining scores are computed over chunks of priors: temporaries stay in cache on CPU, where a
# full-size log_softmax over a small class dimension is several times slower. (CPU: 32768 rows
# ran 1.6x faster than 8192 in benchmarks/bench_loss.py, with the same results bit for bit.)
_SCORE_CHUNK_ROWS = {"cpu": 32768, "other": 1 << 22}
# exp(+-80) and sums of a few thousand such terms stay normal, finite float32 numbers.
_LOGIT_LIMIT = 80.0


@torch.no_grad()
def background_loss(cls_logits_BPK: Tensor) -> Tensor:
    """Cross-entropy of the background class at every prior, to rank negatives (no autograd).

    ``-log softmax(x)_0 = log(sum_k exp(x_k)) - x_0``, with logits clamped to +-80 first so that
    ``exp`` can neither overflow nor underflow: exact (to float32 rounding) for logits in that
    range; beyond it scores saturate near 80 nats, where a prior ranks among the hardest anyway.

    Args:
        cls_logits_BPK (Tensor[B, P, K], float): class logits, index 0 = background.

    Returns:
        Tensor[B, P] float32: the background cross-entropy, finite for finite logits.
    """
    batch, num_priors, num_k = cls_logits_BPK.shape
    rows_RK = cls_logits_BPK.reshape(-1, num_k)
    device = rows_RK.device
    ones_K = torch.ones(num_k, dtype=torch.float32, device=device)
    loss_R = torch.empty(rows_RK.shape[0], dtype=torch.float32, device=device)
    background_R = torch.empty_like(loss_R)
    step = _SCORE_CHUNK_ROWS["cpu" if device.type == "cpu" else "other"]
    # One scratch chunk, reused: the logits are never written to.
    scratch_CK = torch.empty(min(step, rows_RK.shape[0]), num_k, dtype=torch.float32, device=device)
    for start in range(0, rows_RK.shape[0], step):
        stop = min(start + step, rows_RK.shape[0])
        clamped_CK = scratch_CK[: stop - start]
        clamped_CK.copy_(rows_RK[start:stop]).clamp_(-_LOGIT_LIMIT, _LOGIT_LIMIT)
        # The background column while the chunk is in cache.
        background_R[start:stop].copy_(clamped_CK[:, 0])
        torch.mv(clamped_CK.exp_(), ones_K, out=loss_R[start:stop])
    return loss_R.log_().sub_(background_R).view(batch, num_priors)


def hard_negative_mask(neg_loss_BP: Tensor, positive_BP: Tensor, neg_pos_ratio: float) -> Tensor:
    """Select the hardest negatives of every image.

    Args:
        neg_loss_BP (Tensor[B, P], float): mining score of every prior (background cross-entropy).
        positive_BP (Tensor[B, P], bool): positives (never selected).
        neg_pos_ratio: at most ``floor(neg_pos_ratio * positives)`` negatives per image, capped
            at the number of negatives of that image.

    Returns:
        Tensor[B, P] bool: the selected negatives. Which of exactly tied losses is taken is
        unspecified.
    """
    num_priors = positive_BP.shape[1]
    num_pos_B = positive_BP.sum(dim=1)
    num_neg_B = torch.minimum((num_pos_B * neg_pos_ratio).long(), num_priors - num_pos_B)
    k = int(num_neg_B.max()) if num_neg_B.numel() else 0
    selected_BP = torch.zeros_like(positive_BP)
    if k == 0:
        return selected_BP
    # Positives rank last; since num_neg_B <= negatives of the image, none of them is ever kept.
    score_BP = neg_loss_BP.detach().masked_fill(positive_BP, float("-inf"))
    top_idx_Bk = score_BP.topk(k, dim=1, sorted=True).indices
    keep_Bk = torch.arange(k, device=score_BP.device).unsqueeze(0) < num_neg_B.unsqueeze(1)
    return selected_BP.scatter_(1, top_idx_Bk, keep_Bk)


class MultiBoxLoss(nn.Module):
    """SSD MultiBox loss over a batch.

    Args:
        neg_pos_ratio: hard negatives kept per positive, per image (SSD: 3).
    """

    def __init__(self, neg_pos_ratio: float = 3.0) -> None:
        super().__init__()
        self.neg_pos_ratio = float(neg_pos_ratio)

    def extra_repr(self) -> str:
        return f"neg_pos_ratio={self.neg_pos_ratio}"

    def forward(
        self,
        cls_logits_BPK: Tensor,
        box_deltas_BP4: Tensor,
        labels_BP: Tensor,
        target_deltas_BP4: Tensor,
        positive_weights_BP: Tensor | None = None,
    ) -> LossParts:
        """Compute the loss.

        Args:
            cls_logits_BPK (Tensor[B, P, K], float): class logits, index 0 = background.
            box_deltas_BP4 (Tensor[B, P, 4], float): predicted deltas (see ``BoxCoder``).
            labels_BP (Tensor[B, P], int64): 0 = background, else class + 1 (``encode_targets``).
            target_deltas_BP4 (Tensor[B, P, 4], float): encoded targets (used at positives only).
            positive_weights_BP (Tensor[B, P], float, optional): weight of each positive prior's
                box and classification terms (``object_balance_weights``, scaled by the caller so
                that they sum to N over the positives); None = 1 (SSD). Mined negatives keep
                weight 1 and the normaliser stays N.

        Returns:
            LossParts of float32 scalars (``num_pos`` int64). Computed in float32 whatever the
            input dtype (mixed precision).
        """
        positive_BP = labels_BP > 0
        num_pos = positive_BP.sum()
        denom = num_pos.clamp(min=1).to(torch.float32)
        num_k = cls_logits_BPK.shape[-1]

        # Localisation: smooth L1 over the positives only.
        pos_index = positive_BP.flatten().nonzero().squeeze(1)
        box_terms_N4 = F.smooth_l1_loss(
            box_deltas_BP4.reshape(-1, 4).index_select(0, pos_index).float(),
            target_deltas_BP4.reshape(-1, 4).index_select(0, pos_index).float(),
            beta=1.0,
            reduction="none",
        )
        if positive_weights_BP is None:
            box = box_terms_N4.sum()
        else:
            pos_weights_N = positive_weights_BP.flatten().index_select(0, pos_index).float()
            box = (box_terms_N4.sum(1) * pos_weights_N).sum()

        bg_loss_BP = background_loss(cls_logits_BPK)
        negative_BP = hard_negative_mask(bg_loss_BP, positive_BP, self.neg_pos_ratio)

        # Confidence: cross-entropy over positives and mined negatives only, so the backward pass
        # touches a few per cent of the logits.
        sel_index = (positive_BP | negative_BP).flatten().nonzero().squeeze(1)
        cls_terms_S = F.cross_entropy(
            cls_logits_BPK.reshape(-1, num_k).index_select(0, sel_index).float(),
            labels_BP.flatten().index_select(0, sel_index),
            reduction="none",
        )
        if positive_weights_BP is not None:
            # Negatives have weight 1; positives their given weight.
            weights_S = torch.where(
                positive_BP.flatten().index_select(0, sel_index),
                positive_weights_BP.flatten().index_select(0, sel_index).float(),
                1.0,
            )
            cls_terms_S = cls_terms_S * weights_S
        cls = cls_terms_S.sum()
        box, cls = box / denom, cls / denom
        return LossParts(total=box + cls, box=box, cls=cls, num_pos=num_pos)
