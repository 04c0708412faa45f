"""What a run checkpoints: ``last.pt`` (everything to resume exactly) and ``best.pt``.

``last.pt`` holds the training weights plus optimiser, schedule, scaler, EMA, iteration, data
position (epoch and batches consumed in it), RNG states and the best metric so far. ``best.pt``
holds the evaluated weights (the EMA when on) and the metrics that chose them; both describe
themselves (recipe, class names) so ``eval``/``detect``/``export`` need only the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ssdcli.config import recipe_to_dict
from ssdcli.engine import checkpoint as ckpt
from ssdcli.errors import CheckpointError

if TYPE_CHECKING:
    from ssdcli.engine.trainsetup import TrainContext


def training_payload(ctx: TrainContext) -> dict[str, Any]:
    """``last.pt``: model, optimiser, schedule, scaler, EMA, position, RNG states, best metric."""
    return ckpt.make_payload(
        ctx.model.state_dict(),
        recipe_to_dict(ctx.recipe),
        list(ctx.manifest.class_names),
        getattr(ctx.manifest, "category_ids", None),
        optimizer=ctx.optimizer.state_dict(),
        scheduler=ctx.scheduler.state_dict(),
        scaler=ctx.scaler.state_dict(),
        ema=ctx.ema.state_dict() if ctx.ema is not None else None,
        iteration=ctx.iteration,
        epoch=ctx.epoch,
        rng=ckpt.capture_rng_state(),
        data_order={
            "seed": ctx.recipe.train.seed,
            "epoch": ctx.epoch,
            "batch_in_epoch": ctx.batch_in_epoch,
            "global_batch": ctx.global_batch,
            "num_samples": ctx.sampler.num_samples,
        },
        best_metric=ctx.best_metric,
        best_iteration=ctx.best_iteration,
        seconds=ctx.elapsed(),
    )


def save_last(ctx: TrainContext) -> None:
    """Writes ``last.pt`` atomically."""
    ckpt.save_checkpoint(ctx.run_dir / "last.pt", training_payload(ctx))


def save_best(ctx: TrainContext, eval_model: nn.Module) -> None:
    """Writes ``best.pt``: the evaluated weights (EMA when on) and the metrics that chose them."""
    payload = ckpt.make_payload(
        eval_model.state_dict(),
        recipe_to_dict(ctx.recipe),
        list(ctx.manifest.class_names),
        getattr(ctx.manifest, "category_ids", None),
        iteration=ctx.iteration,
        best_metric=ctx.best_metric,
        metrics=dict(ctx.last_metrics),
    )
    ckpt.save_checkpoint(ctx.run_dir / "best.pt", payload)


def restore_last(ctx: TrainContext) -> int:
    """Loads ``run_dir/last.pt`` into ``ctx``; returns the iteration it resumes from."""
    path = ctx.run_dir / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"--resume {ctx.run_dir}: no last.pt there; check the run folder")
    payload = ckpt.load_checkpoint(path)
    if "optimizer" not in payload:
        raise CheckpointError(f"{path} holds no training state; it cannot be resumed")
    ctx.model.load_state_dict(payload["model"])
    ctx.optimizer.load_state_dict(payload["optimizer"])
    ctx.scheduler.load_state_dict(payload["scheduler"])
    if payload.get("scaler"):
        ctx.scaler.load_state_dict(payload["scaler"])
    if ctx.ema is not None and payload.get("ema") is not None:
        ctx.ema.load_state_dict(payload["ema"])
    ctx.iteration = int(payload["iteration"])
    order = payload["data_order"]
    ctx.epoch = int(order["epoch"])
    ctx.batch_in_epoch = int(order["batch_in_epoch"])
    if (order["global_batch"], order["num_samples"]) != (ctx.global_batch, ctx.sampler.num_samples):
        ctx.console.print("[yellow]batch size or data set changed: the epoch restarts[/]")
        ctx.batch_in_epoch = 0
    ctx.best_metric = payload.get("best_metric")
    ctx.best_iteration = payload.get("best_iteration")
    ctx.seconds_before = float(payload.get("seconds", 0.0))
    ckpt.restore_rng_state(payload["rng"])
    return ctx.iteration
