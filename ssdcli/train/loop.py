"""``ssd train``: a plain training loop (``fit`` -> ``train_one_epoch`` -> ``train_step``).

One step: batch to device -> batched matching (``match`` + ``encode_matched`` on the padded ground
truths; optional per-object weights) -> forward -> MultiBox loss -> backward -> clip -> optimiser
and schedule step -> EMA update.
Everything a resumed run needs (weights, optimiser, schedule, scaler, EMA, iteration, RNG states,
data position) is in ``last.pt``; the data order depends only on ``(seed, epoch)``, so a run
resumed mid-epoch skips the consumed batches and ends with the same weights (bit-identical on CPU).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from ssdcli.config import Recipe, dump_recipe
from ssdcli.errors import SsdError
from ssdcli.matcher import encode_matched, match, object_balance_weights
from ssdcli.metrics.undefined import is_undefined
from ssdcli.train import setup as trainsetup
from ssdcli.train import state as trainstate
from ssdcli.train.context import LoopState, TrainParts
from ssdcli.train.distributed import all_reduce_sum, barrier, broadcast_flag
from ssdcli.train.runlog import eval_line, plot_run_curves, run_summary


class NonFiniteLossError(SsdError):
    """The loss became NaN or infinite; training stopped before the weights were corrupted."""


@dataclass
class TrainResult:
    """What ``fit`` returns: where the run is, how far it got and its best metric."""

    run_dir: Path
    iteration: int
    total_iterations: int
    best_metric: float | None
    best_iteration: int | None
    last_metrics: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0


@dataclass
class _Window:
    """Sums of the (global) loss parts since the last log line."""

    box: float = 0.0
    cls: float = 0.0
    steps: int = 0
    images: int = 0
    t0: float = field(default_factory=time.perf_counter)


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
        parts.recipe.train.match_iou,
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
    """Per-prior weights for ``train.object_balance`` (None when it is 0, SSD's weighting).

    The raw weights ``n ** -p`` are scaled so that they sum to N, the positive count, over the
    global batch (one all-reduce of two numbers), so the loss keeps its scale and a DDP run
    weighs its priors exactly as one process would.

    Returns:
        Tensor[B, P] float32, or None.
    """
    power = parts.recipe.train.object_balance
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


def train_one_epoch(parts: TrainParts, state: LoopState, loader: Any, epoch: int) -> bool:
    """Runs the batches of ``epoch`` left to do; evaluates, logs and checkpoints on schedule.

    Returns:
        True when the run should stop (length reached or stop requested), False at epoch end.
    """
    cfg = parts.recipe.train
    window = _Window()
    parts.model.train()
    for batch in loader:
        box, cls, stop = train_step(parts, state, batch)
        state.iteration += 1
        state.batch_in_epoch += 1
        window.box += box
        window.cls += cls
        window.steps += 1
        window.images += parts.global_batch
        stats = _window_stats(parts, window, box, cls)
        parts.progress.update(state.iteration, epoch, stats)
        if state.iteration % cfg.log_every == 0 or state.iteration == parts.total_iterations:
            _log_window(parts, state, epoch, window)
            window = _Window()
        done = state.iteration >= parts.total_iterations
        if state.iteration % cfg.eval_every == 0 or done:
            evaluate_now(parts, state)
        if stop or done or state.iteration % cfg.checkpoint_every == 0:
            save_training_checkpoint(parts, state)
        if stop:
            state.interrupted = True
            return True
        if done:
            return True
    state.epoch = epoch + 1
    state.batch_in_epoch = 0
    return False


def _window_stats(parts: TrainParts, window: _Window, box: float, cls: float) -> dict[str, float]:
    seconds = max(time.perf_counter() - window.t0, 1e-9)
    return {
        "loss": box + cls,
        "box_loss": box,
        "cls_loss": cls,
        "lr": parts.optimizer.param_groups[0]["lr"],
        "images_per_s": window.images / seconds,
    }


def _log_window(parts: TrainParts, state: LoopState, epoch: int, window: _Window) -> None:
    if not parts.info.is_main or window.steps == 0:
        return
    seconds = max(time.perf_counter() - window.t0, 1e-9)
    box, cls = window.box / window.steps, window.cls / window.steps
    parts.metrics.add(
        {
            "iteration": state.iteration,
            "epoch": epoch,
            "loss": box + cls,
            "box_loss": box,
            "cls_loss": cls,
            "lr": parts.optimizer.param_groups[0]["lr"],
            "images_per_s": window.images / seconds,
            "time_s": state.elapsed(),
        }
    )


def evaluate_now(parts: TrainParts, state: LoopState) -> None:
    """Evaluates the EMA weights (or the model) on the validation split; saves best.pt on gains.

    Rank 0 evaluates while the other ranks wait at a barrier.
    """
    if parts.info.is_main and parts.val_available:
        from ssdcli.evaluate.evaluator import evaluate_detector

        eval_model = parts.ema.module if parts.ema is not None else parts.model
        detector = replace(parts.detector, model=eval_model)
        was_training = eval_model.training
        eval_model.eval()
        result = evaluate_detector(
            detector,
            parts.manifest,
            parts.recipe.data.val_split,
            parts.recipe,
            parts.recipe.eval.metric,
            parts.device,
        )
        eval_model.train(was_training)
        metrics = trainsetup.flat_metrics(result)
        state.last_metrics = metrics
        parts.metrics.add({"iteration": state.iteration, "epoch": state.epoch, **metrics})
        value = metrics.get(parts.recipe.train.best_metric)
        parts.progress.message(eval_line(state.iteration, metrics))
        # An undefined value (NaN) is never a best: it would compare false with everything after.
        if not is_undefined(value) and (state.best_metric is None or value > state.best_metric):
            state.best_metric, state.best_iteration = value, state.iteration
            trainstate.save_best(parts, state, eval_model)
    barrier(parts.info)
    parts.model.train()


def save_training_checkpoint(parts: TrainParts, state: LoopState) -> None:
    """Writes ``last.pt`` (rank 0) with everything needed to resume exactly here."""
    if parts.info.is_main:
        trainstate.save_last(parts, state)
    barrier(parts.info)


def fit(
    recipe: Recipe,
    run_dir: Path,
    device: str = "auto",
    resume: bool = False,
    console: Console | None = None,
    manifest: Any = None,
) -> TrainResult:
    """Trains a detector as ``recipe`` says, writing the run folder ``run_dir``.

    Args:
        recipe: the resolved recipe (for ``resume``, the run's own recipe plus overrides).
        run_dir: ``runs/<name>``; must not hold a run unless ``resume``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        resume: continue from ``run_dir/last.pt``.
        console: where progress and the summary go (rank 0 only).
        manifest: the data set when the caller already opened it (else built from the recipe).

    Returns:
        :class:`TrainResult`; ``interrupted`` is True after a Ctrl-C (checkpoint saved).

    Raises:
        DataError: the data set is missing or unusable (before any model is built).
        NonFiniteLossError: the loss diverged.
    """
    console = console or Console()
    parts, state = trainsetup.build_parts(recipe, Path(run_dir), device, resume, console, manifest)
    try:
        if parts.info.is_main and not resume:
            (parts.run_dir / "recipe.yaml").write_text(dump_recipe(parts.recipe))
        with parts.progress, parts.stop:
            while state.iteration < parts.total_iterations:
                parts.sampler.set_epoch(state.epoch, skip_batches=state.batch_in_epoch)
                if train_one_epoch(parts, state, parts.loader, state.epoch):
                    break
                if broadcast_flag(parts.stop.requested, parts.info, parts.device):
                    save_training_checkpoint(parts, state)
                    state.interrupted = True
                    break
        return _finish(parts, state)
    finally:
        trainsetup.close_parts(parts)


def _finish(parts: TrainParts, state: LoopState) -> TrainResult:
    result = TrainResult(
        run_dir=parts.run_dir,
        iteration=state.iteration,
        total_iterations=parts.total_iterations,
        best_metric=state.best_metric,
        best_iteration=state.best_iteration,
        last_metrics=dict(state.last_metrics),
        interrupted=state.interrupted,
        seconds=state.elapsed(),
    )
    if parts.info.is_main:
        metric_names = [k for k in parts.metrics.columns if k.startswith(("voc", "coco"))]
        plots = plot_run_curves(parts.metrics.path, parts.run_dir, metric_names)
        parts.console.print(
            run_summary(
                parts.run_dir,
                result,
                parts.global_batch,
                parts.metrics,
                parts.recipe.train.best_metric,
                plots,
            )
        )
    return result
