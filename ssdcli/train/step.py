"""One optimisation step of SSD training.

Batch to device -> batched matching (``match`` + ``encode_matched`` on the padded ground truths;
optional per-object weights) -> forward -> MultiBox loss (normalised by the positives of all
ranks) -> backward -> clip -> optimiser and schedule step -> EMA update.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ssdcli.errors import SsdError
from ssdcli.matcher import encode_matched, match, object_balance_weights
from ssdcli.train.context import LoopState, TrainParts
from ssdcli.train.distributed import all_reduce_sum


class NonFiniteLossError(SsdError):
    """The loss became NaN or infinite; training stopped before the weights were corrupted."""


def train_step(parts: TrainParts, state: LoopState, batch: Any) -> tuple[float, float, bool]:
    """One optimisation step on this rank's part of a global batch.

    Returns:
        ``(box_loss, cls_loss, stop_requested)``: the global batch's loss parts (normalised by the
        positives of all ranks) and whether any rank asked to stop after this step.

    Raises:
        NonFiniteLossError: a loss part is NaN/inf (checked on all ranks before ``backward``).
    """
    device = parts.device
    images_BCHW = batch.images_BCHW.to(device, non_blocking=True)
    images_BCHW = images_BCHW.contiguous(memory_format=torch.channels_last)  # as the model
    gt_boxes_BG4 = batch.gt_boxes_BG4.to(device, non_blocking=True)
    matched_BP = match(
        gt_boxes_BG4,
        batch.gt_mask_BG.to(device, non_blocking=True),
        parts.detector.priors_P4,
        parts.recipe.loss.match_iou,
    )
    labels_BP, target_deltas_BP4 = encode_matched(
        matched_BP,
        gt_boxes_BG4,
        batch.gt_labels_BG.to(device, non_blocking=True),
        parts.detector.priors_P4,
        parts.coder,
    )
    positive_weights_BP = _positive_weights(parts, matched_BP, gt_boxes_BG4.shape[1])
    with parts.autocast():
        cls_logits_BPK, box_deltas_BP4 = parts.train_model(images_BCHW)
    loss_parts = parts.criterion(
        cls_logits_BPK, box_deltas_BP4, labels_BP, target_deltas_BP4, positive_weights_BP
    )

    # MultiBoxLoss divides by max(N, 1). Summed parts and N are reduced over ranks so that the
    # normalisation uses the global N and the averaged DDP gradient equals one process's.
    local_pos = loss_parts.num_pos.clamp(min=1).to(torch.float32)
    finite = torch.isfinite(loss_parts.box) & torch.isfinite(loss_parts.cls)
    stats = torch.stack(
        [
            loss_parts.num_pos.to(torch.float32),
            torch.nan_to_num(loss_parts.box.detach() * local_pos, nan=0.0, posinf=0.0),
            torch.nan_to_num(loss_parts.cls.detach() * local_pos, nan=0.0, posinf=0.0),
            (~finite).to(torch.float32),
            torch.tensor(float(parts.stop.requested), device=loss_parts.box.device),
        ]
    )
    stats = all_reduce_sum(stats, parts.info).cpu()
    global_pos = max(float(stats[0]), 1.0)
    if stats[3] > 0:
        _raise_non_finite(parts, state, loss_parts)
    scale = float(local_pos) * parts.info.world_size / global_pos
    loss = loss_parts.total if scale == 1.0 else loss_parts.total * scale

    parts.optimizer.zero_grad(set_to_none=True)
    parts.scaler.scale(loss).backward()
    if parts.recipe.train.grad_clip is not None:
        parts.scaler.unscale_(parts.optimizer)
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), parts.recipe.train.grad_clip)
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.scheduler.step()
    if parts.ema is not None:
        parts.ema.update(parts.model)
    return float(stats[1]) / global_pos, float(stats[2]) / global_pos, bool(stats[4] > 0)


def _positive_weights(parts: TrainParts, matched_BP: Tensor, num_gt: int) -> Tensor | None:
    """Per-prior weights for ``loss.object_balance`` (None when it is 0, SSD's weighting).

    The raw weights ``n ** -p`` are scaled so that they sum to N, the positive count, over the
    global batch (one all-reduce of two numbers), so the loss keeps its scale and a DDP run
    weighs its priors exactly as one process would.

    Returns:
        Tensor[B, P] float32, or None.
    """
    power = parts.recipe.loss.object_balance
    if power == 0:
        return None
    weights_BP = object_balance_weights(matched_BP, num_gt, power)
    sums = torch.stack([(matched_BP >= 0).sum().to(torch.float32), weights_BP.sum()])
    sums = all_reduce_sum(sums, parts.info)
    return weights_BP * (sums[0] / sums[1].clamp(min=1e-12))


def _raise_non_finite(parts: TrainParts, state: LoopState, loss_parts: Any) -> None:
    bad = [n for n in ("box", "cls") if not math.isfinite(float(getattr(loss_parts, n).detach()))]
    which = " and ".join(bad) if bad else "box/cls (on another rank)"
    last = parts.run_dir / "last.pt"
    kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint yet"
    amp = parts.recipe.train.amp
    raise NonFiniteLossError(
        f"non-finite {which} loss at iteration {state.iteration + 1}; training stopped ({kept}). "
        f"Check: the learning rate (train.lr={parts.recipe.train.lr:g}, try lower or add "
        f"train.warmup_iterations / train.grad_clip), the data's boxes (zero-size or outside the "
        f"image), and mixed precision (train.amp={amp}"
        + (", try bf16 or off)" if amp == "fp16" else ")")
    )
