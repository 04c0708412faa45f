"""What a run checkpoints: ``last.pt`` (everything to resume exactly) and ``best.pt``.

``last.pt`` holds the training weights plus optimiser, schedule, scaler, EMA, iteration, data
position (epoch and batches consumed in it), RNG states and the best metric so far. ``best.pt``
holds the evaluated weights (the EMA when on) and the metrics that chose them; both describe
themselves (recipe, class names) so ``eval``/``detect``/``export`` need only the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ssdcli.checkpoint import file as ckpt
from ssdcli.checkpoint.rng import capture_rng_state, restore_rng_state
from ssdcli.config import recipe_to_dict
from ssdcli.errors import CheckpointError

if TYPE_CHECKING:
    from ssdcli.train.context import LoopState, TrainParts


def training_payload(parts: TrainParts, state: LoopState) -> dict[str, Any]:
    """``last.pt``: model, optimiser, schedule, scaler, EMA, position, RNG states, best metric."""
    return ckpt.make_payload(
        parts.model.state_dict(),
        recipe_to_dict(parts.recipe),
        list(parts.manifest.class_names),
        getattr(parts.manifest, "category_ids", None),
        optimizer=parts.optimizer.state_dict(),
        scheduler=parts.scheduler.state_dict(),
        scaler=parts.scaler.state_dict(),
        ema=parts.ema.state_dict() if parts.ema is not None else None,
        iteration=state.iteration,
        epoch=state.epoch,
        rng=capture_rng_state(),
        data_order={
            "seed": parts.recipe.train.seed,
            "epoch": state.epoch,
            "batch_in_epoch": state.batch_in_epoch,
            "global_batch": parts.global_batch,
            "num_samples": parts.sampler.num_samples,
        },
        best_metric=state.best_metric,
        best_iteration=state.best_iteration,
        seconds=state.elapsed(),
    )


def save_last(parts: TrainParts, state: LoopState) -> None:
    """Writes ``last.pt`` atomically."""
    ckpt.save_checkpoint(parts.run_dir / "last.pt", training_payload(parts, state))


def save_best(parts: TrainParts, state: LoopState, eval_model: nn.Module) -> None:
    """Writes ``best.pt``: the evaluated weights (EMA when on) and the metrics that chose them."""
    payload = ckpt.make_payload(
        eval_model.state_dict(),
        recipe_to_dict(parts.recipe),
        list(parts.manifest.class_names),
        getattr(parts.manifest, "category_ids", None),
        iteration=state.iteration,
        best_metric=state.best_metric,
        metrics=dict(state.last_metrics),
    )
    ckpt.save_checkpoint(parts.run_dir / "best.pt", payload)


def restore_last(parts: TrainParts, state: LoopState) -> int:
    """Loads ``run_dir/last.pt`` into ``parts`` and ``state``; returns the resumed iteration."""
    path = parts.run_dir / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"--resume {parts.run_dir}: no last.pt there; check the run folder")
    payload = ckpt.load_checkpoint(path)
    if "optimizer" not in payload:
        raise CheckpointError(f"{path} holds no training state; it cannot be resumed")
    parts.model.load_state_dict(payload["model"])
    parts.optimizer.load_state_dict(payload["optimizer"])
    parts.scheduler.load_state_dict(payload["scheduler"])
    if payload.get("scaler"):
        parts.scaler.load_state_dict(payload["scaler"])
    if parts.ema is not None and payload.get("ema") is not None:
        parts.ema.load_state_dict(payload["ema"])
    state.iteration = int(payload["iteration"])
    order = payload["data_order"]
    state.epoch = int(order["epoch"])
    state.batch_in_epoch = int(order["batch_in_epoch"])
    saved_order = (order["global_batch"], order["num_samples"])
    if saved_order != (parts.global_batch, parts.sampler.num_samples):
        parts.console.print("[yellow]batch size or data set changed: the epoch restarts[/]")
        state.batch_in_epoch = 0
    state.best_metric = payload.get("best_metric")
    state.best_iteration = payload.get("best_iteration")
    state.seconds_before = float(payload.get("seconds", 0.0))
    restore_rng_state(payload["rng"])
    return state.iteration
