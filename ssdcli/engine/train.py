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
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from torch import Tensor

from ssdcli.config import Recipe, dump_recipe
from ssdcli.engine import trainsetup, trainstate
from ssdcli.engine.distributed import all_reduce_sum, barrier, broadcast_flag
from ssdcli.engine.runlog import plot_run_curves, run_summary
from ssdcli.errors import SsdError
from ssdcli.matcher import encode_matched, match, object_balance_weights

if TYPE_CHECKING:
    from ssdcli.engine.trainsetup import TrainContext


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


def train_step(ctx: TrainContext, batch: Any) -> tuple[float, float, bool]:
    """One optimisation step on this rank's part of a global batch.

    Returns:
        ``(box_loss, cls_loss, stop_requested)``: the global batch's loss parts (normalised by the
        positives of all ranks) and whether any rank asked to stop after this step.

    Raises:
        NonFiniteLossError: a loss part is NaN/inf (checked on all ranks before ``backward``).
    """
    device = ctx.device
    images_BCHW = batch.images_BCHW.to(device, non_blocking=True)
    images_BCHW = images_BCHW.contiguous(memory_format=torch.channels_last)  # as the model
    gt_boxes_BG4 = batch.gt_boxes_BG4.to(device, non_blocking=True)
    matched_BP = match(
        gt_boxes_BG4,
        batch.gt_mask_BG.to(device, non_blocking=True),
        ctx.detector.priors_P4,
        ctx.recipe.train.match_iou,
    )
    labels_BP, target_deltas_BP4 = encode_matched(
        matched_BP,
        gt_boxes_BG4,
        batch.gt_labels_BG.to(device, non_blocking=True),
        ctx.detector.priors_P4,
        ctx.coder,
    )
    positive_weights_BP = _positive_weights(ctx, matched_BP, gt_boxes_BG4.shape[1])
    with ctx.autocast():
        cls_logits_BPK, box_deltas_BP4 = ctx.train_model(images_BCHW)
    parts = ctx.criterion(
        cls_logits_BPK, box_deltas_BP4, labels_BP, target_deltas_BP4, positive_weights_BP
    )

    # MultiBoxLoss divides by max(N, 1). Summed parts and N are reduced over ranks so that the
    # normalisation uses the global N and the averaged DDP gradient equals one process's.
    local_pos = parts.num_pos.clamp(min=1).to(torch.float32)
    finite = torch.isfinite(parts.box) & torch.isfinite(parts.cls)
    stats = torch.stack(
        [
            parts.num_pos.to(torch.float32),
            torch.nan_to_num(parts.box.detach() * local_pos, nan=0.0, posinf=0.0),
            torch.nan_to_num(parts.cls.detach() * local_pos, nan=0.0, posinf=0.0),
            (~finite).to(torch.float32),
            torch.tensor(float(ctx.stop.requested), device=parts.box.device),
        ]
    )
    stats = all_reduce_sum(stats, ctx.info).cpu()
    global_pos = max(float(stats[0]), 1.0)
    if stats[3] > 0:
        _raise_non_finite(ctx, parts)
    scale = float(local_pos) * ctx.info.world_size / global_pos
    loss = parts.total if scale == 1.0 else parts.total * scale

    ctx.optimizer.zero_grad(set_to_none=True)
    ctx.scaler.scale(loss).backward()
    if ctx.recipe.train.grad_clip is not None:
        ctx.scaler.unscale_(ctx.optimizer)
        torch.nn.utils.clip_grad_norm_(ctx.model.parameters(), ctx.recipe.train.grad_clip)
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.scheduler.step()
    if ctx.ema is not None:
        ctx.ema.update(ctx.model)
    return float(stats[1]) / global_pos, float(stats[2]) / global_pos, bool(stats[4] > 0)


def _positive_weights(ctx: TrainContext, matched_BP: Tensor, num_gt: int) -> Tensor | None:
    """Per-prior weights for ``train.object_balance`` (None when it is 0, SSD's weighting).

    The raw weights ``n ** -p`` are scaled so that they sum to N, the positive count, over the
    global batch (one all-reduce of two numbers), so the loss keeps its scale and a DDP run
    weighs its priors exactly as one process would.

    Returns:
        Tensor[B, P] float32, or None.
    """
    power = ctx.recipe.train.object_balance
    if power == 0:
        return None
    weights_BP = object_balance_weights(matched_BP, num_gt, power)
    sums = torch.stack([(matched_BP >= 0).sum().to(torch.float32), weights_BP.sum()])
    sums = all_reduce_sum(sums, ctx.info)
    return weights_BP * (sums[0] / sums[1].clamp(min=1e-12))


def _raise_non_finite(ctx: TrainContext, parts: Any) -> None:
    bad = [n for n in ("box", "cls") if not math.isfinite(float(getattr(parts, n).detach()))]
    which = " and ".join(bad) if bad else "box/cls (on another rank)"
    last = ctx.run_dir / "last.pt"
    kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint yet"
    amp = ctx.recipe.train.amp
    raise NonFiniteLossError(
        f"non-finite {which} loss at iteration {ctx.iteration + 1}; training stopped ({kept}). "
        f"Check: the learning rate (train.lr={ctx.recipe.train.lr:g}, try lower or add "
        f"train.warmup_iterations / train.grad_clip), the data's boxes (zero-size or outside the "
        f"image), and mixed precision (train.amp={amp}"
        + (", try bf16 or off)" if amp == "fp16" else ")")
    )


def train_one_epoch(ctx: TrainContext, loader: Any, epoch: int) -> bool:
    """Runs the batches of ``epoch`` left to do; evaluates, logs and checkpoints on schedule.

    Returns:
        True when the run should stop (length reached or stop requested), False at epoch end.
    """
    cfg = ctx.recipe.train
    window = _Window()
    ctx.model.train()
    for batch in loader:
        box, cls, stop = train_step(ctx, batch)
        ctx.iteration += 1
        ctx.batch_in_epoch += 1
        window.box += box
        window.cls += cls
        window.steps += 1
        window.images += ctx.global_batch
        stats = _window_stats(ctx, window, box, cls)
        ctx.progress.update(ctx.iteration, epoch, stats)
        if ctx.iteration % cfg.log_every == 0 or ctx.iteration == ctx.total_iterations:
            _log_window(ctx, epoch, window)
            window = _Window()
        done = ctx.iteration >= ctx.total_iterations
        if ctx.iteration % cfg.eval_every == 0 or done:
            evaluate_now(ctx)
        if stop or done or ctx.iteration % cfg.checkpoint_every == 0:
            save_training_checkpoint(ctx)
        if stop:
            ctx.interrupted = True
            return True
        if done:
            return True
    ctx.epoch = epoch + 1
    ctx.batch_in_epoch = 0
    return False


def _window_stats(ctx: TrainContext, window: _Window, box: float, cls: float) -> dict[str, float]:
    seconds = max(time.perf_counter() - window.t0, 1e-9)
    return {
        "loss": box + cls,
        "box_loss": box,
        "cls_loss": cls,
        "lr": ctx.optimizer.param_groups[0]["lr"],
        "images_per_s": window.images / seconds,
    }


def _log_window(ctx: TrainContext, epoch: int, window: _Window) -> None:
    if not ctx.info.is_main or window.steps == 0:
        return
    seconds = max(time.perf_counter() - window.t0, 1e-9)
    box, cls = window.box / window.steps, window.cls / window.steps
    ctx.metrics.add(
        {
            "iteration": ctx.iteration,
            "epoch": epoch,
            "loss": box + cls,
            "box_loss": box,
            "cls_loss": cls,
            "lr": ctx.optimizer.param_groups[0]["lr"],
            "images_per_s": window.images / seconds,
            "time_s": ctx.elapsed(),
        }
    )


def evaluate_now(ctx: TrainContext) -> None:
    """Evaluates the EMA weights (or the model) on the validation split; saves best.pt on gains.

    Rank 0 evaluates while the other ranks wait at a barrier.
    """
    if ctx.info.is_main and ctx.val_available:
        from ssdcli.engine.evaluate import evaluate_detector

        eval_model = ctx.ema.module if ctx.ema is not None else ctx.model
        detector = replace(ctx.detector, model=eval_model)
        was_training = eval_model.training
        eval_model.eval()
        result = evaluate_detector(
            detector,
            ctx.manifest,
            ctx.recipe.data.val_split,
            ctx.recipe,
            ctx.recipe.eval.metric,
            ctx.device,
        )
        eval_model.train(was_training)
        metrics = trainsetup.flat_metrics(result)
        ctx.last_metrics = metrics
        ctx.metrics.add({"iteration": ctx.iteration, "epoch": ctx.epoch, **metrics})
        value = metrics.get(ctx.recipe.train.best_metric)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        ctx.progress.message(f"eval @ {ctx.iteration}: {shown}")
        if value is not None and (ctx.best_metric is None or value > ctx.best_metric):
            ctx.best_metric, ctx.best_iteration = value, ctx.iteration
            trainstate.save_best(ctx, eval_model)
    barrier(ctx.info)
    ctx.model.train()


def save_training_checkpoint(ctx: TrainContext) -> None:
    """Writes ``last.pt`` (rank 0) with everything needed to resume exactly here."""
    if ctx.info.is_main:
        trainstate.save_last(ctx)
    barrier(ctx.info)


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
    ctx = trainsetup.build_context(recipe, Path(run_dir), device, resume, console, manifest)
    try:
        if ctx.info.is_main and not resume:
            (ctx.run_dir / "recipe.yaml").write_text(dump_recipe(ctx.recipe))
        with ctx.progress, ctx.stop:
            while ctx.iteration < ctx.total_iterations:
                ctx.sampler.set_epoch(ctx.epoch, skip_batches=ctx.batch_in_epoch)
                if train_one_epoch(ctx, ctx.loader, ctx.epoch):
                    break
                if broadcast_flag(ctx.stop.requested, ctx.info, ctx.device):
                    save_training_checkpoint(ctx)
                    ctx.interrupted = True
                    break
        return _finish(ctx)
    finally:
        trainsetup.close_context(ctx)


def _finish(ctx: TrainContext) -> TrainResult:
    result = TrainResult(
        run_dir=ctx.run_dir,
        iteration=ctx.iteration,
        total_iterations=ctx.total_iterations,
        best_metric=ctx.best_metric,
        best_iteration=ctx.best_iteration,
        last_metrics=dict(ctx.last_metrics),
        interrupted=ctx.interrupted,
        seconds=ctx.elapsed(),
    )
    if ctx.info.is_main:
        metric_names = [k for k in ctx.metrics.columns if k.startswith(("voc", "coco"))]
        plots = plot_run_curves(ctx.metrics.path, ctx.run_dir, metric_names)
        ctx.console.print(
            run_summary(
                ctx.run_dir,
                result,
                ctx.global_batch,
                ctx.metrics,
                ctx.recipe.train.best_metric,
                plots,
            )
        )
    return result
