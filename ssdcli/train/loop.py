"""``ssd train``: a plain training loop (``fit`` -> ``train_one_epoch`` -> ``train_step``).

The step itself is :func:`ssdcli.train.step.train_step`.
Everything a resumed run needs (weights, optimiser, schedule, scaler, EMA, iteration, RNG states,
data position) is in ``last.pt``; the data order depends only on ``(seed, epoch)``, so a run
resumed mid-epoch skips the consumed batches and ends with the same weights (bit-identical on CPU).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import ssdcli.train.setup as trainsetup
import ssdcli.train.state as trainstate
import ssdcli.train.visuals as visuals
from ssdcli.config import Recipe, dump_recipe, override_recipe
from ssdcli.console import make_console
from ssdcli.errors import RecipeError
from ssdcli.metrics.undefined import is_undefined
from ssdcli.train.budget import (
    TimeBudget,
    plan_length,
    reference_evaluations,
    replan_length,
    scaled_schedule,
)
from ssdcli.train.context import LoopState, TrainParts
from ssdcli.train.cores import CpuClock, cpu_seconds
from ssdcli.train.distributed import all_reduce_sum, barrier, broadcast_flag
from ssdcli.train.runlog import eval_line, format_duration, plot_run_curves, run_summary
from ssdcli.train.step import train_step


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
    cores_busy: float | None = None  # CPU seconds of all the run's processes / wall seconds
    budget: str | None = None  # train.time: the budget, the time used and the plan


@dataclass
class _Window:
    """Sums of the (global) loss parts since the last log line."""

    box: float = 0.0
    cls: float = 0.0
    steps: int = 0
    images: int = 0
    t0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=cpu_seconds)  # this process and its loader workers


def train_one_epoch(parts: TrainParts, state: LoopState, loader: Any, epoch: int) -> bool:
    """Runs the batches of ``epoch`` left to do; evaluates, logs and checkpoints on schedule.

    Returns:
        True when the run should stop (length reached, budget spent or stop requested), False
        at epoch end or when a time budget's timing steps are done (the epoch then goes on).
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
        stats = _window_stats(parts, window)
        parts.progress.update(state.iteration, epoch, stats)
        if state.iteration % cfg.log_every == 0 or state.iteration == parts.total_iterations:
            _log_window(parts, state, epoch, window)
            window = _Window()
        budget = parts.budget
        pause = budget is not None and budget.record_step(state.iteration)
        done = state.iteration >= parts.total_iterations
        if budget is not None and not done and budget.out_of_time():
            done = budget.stopped_early = True
        if state.iteration % cfg.eval_every == 0 or done:
            t_eval = time.perf_counter()
            evaluate_now(parts, state)
            if budget is not None and budget.planned is not None:
                budget.eval_seconds += time.perf_counter() - t_eval
        if stop or done or state.iteration % cfg.checkpoint_every == 0:
            save_training_checkpoint(parts, state)
        if stop:
            state.interrupted = True
            return True
        if done:
            return True
        if pause:  # train.time: the speed is measured; fit plans the run's length
            return False
    state.epoch = epoch + 1
    state.batch_in_epoch = 0
    return False


def _window_stats(parts: TrainParts, window: _Window) -> dict[str, float]:
    """What the progress line shows: losses averaged over the log window so far, the same
    numbers ``metrics.csv`` and the summary's final loss record at the window's end."""
    seconds = max(time.perf_counter() - window.t0, 1e-9)
    box, cls = window.box / window.steps, window.cls / window.steps
    return {
        "loss": box + cls,
        "box_loss": box,
        "cls_loss": cls,
        "lr": parts.optimizer.param_groups[0]["lr"],
        "images_per_s": window.images / seconds,
    }


def _log_window(parts: TrainParts, state: LoopState, epoch: int, window: _Window) -> None:
    if window.steps == 0:
        return
    # Every rank adds its CPU seconds (collective), so the window's cores count all processes.
    own_cpu_1 = torch.tensor([cpu_seconds() - window.cpu0], device=parts.device)
    cpu = all_reduce_sum(own_cpu_1, parts.info).cpu()
    if not parts.info.is_main:
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
            "cores": float(cpu[0]) / seconds,
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
        threads = torch.get_num_threads()
        if parts.info.distributed and parts.device.type == "cpu":
            # The other ranks wait at the barrier below: their cores serve the evaluation.
            torch.set_num_threads(min(os.cpu_count() or 1, threads * parts.info.world_size))
        try:
            result = evaluate_detector(
                detector,
                parts.manifest,
                parts.recipe.data.val_split,
                parts.recipe,
                parts.recipe.eval.metric,
                parts.device,
            )
        finally:
            torch.set_num_threads(threads)
        eval_model.train(was_training)
        metrics = trainsetup.flat_metrics(result)
        state.last_metrics = metrics
        parts.metrics.add({"iteration": state.iteration, "epoch": state.epoch, **metrics})
        value = metrics.get(parts.recipe.train.best_metric)
        parts.progress.message(eval_line(state.iteration, metrics))
        visuals.after_evaluation(parts, state, result)  # val_pred_<it>.png; report.html at the end
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
    console = console or make_console()
    clock = CpuClock()
    t_start = time.perf_counter()
    parts, state = trainsetup.build_parts(recipe, Path(run_dir), device, resume, console, manifest)
    if parts.recipe.train.time is not None and not resume:
        if parts.info.distributed:
            trainsetup.close_parts(parts)
            raise RecipeError(
                "train.time: a time budget works in one training process only; set "
                "train.processes=1 or give train.iterations instead (--set train.time=null)"
            )
        budget = TimeBudget(parts.recipe.train.time, parts.total_iterations, t0=t_start)
        parts = replace(parts, budget=budget)
    try:
        if parts.info.is_main and not resume:
            (parts.run_dir / "recipe.yaml").write_text(dump_recipe(parts.recipe))
            visuals.write_run_labels(parts)
        with parts.progress, parts.stop:
            while state.iteration < parts.total_iterations:
                parts.sampler.set_epoch(state.epoch, skip_batches=state.batch_in_epoch)
                if train_one_epoch(parts, state, parts.loader, state.epoch):
                    break
                budget = parts.budget
                if budget and budget.planned is None and state.iteration >= budget.timing_end:
                    parts = plan_to_budget(parts, state)
                elif budget and state.iteration in budget.replan_at:
                    parts = replan_to_budget(parts, state)
                if broadcast_flag(parts.stop.requested, parts.info, parts.device):
                    save_training_checkpoint(parts, state)
                    state.interrupted = True
                    break
        return _finish(parts, state, clock)
    finally:
        trainsetup.close_parts(parts)


def plan_to_budget(parts: TrainParts, state: LoopState) -> TrainParts:
    """``train.time``: time one evaluation, then fix the run's length and scale its schedule.

    The step time comes from the steps just done (:class:`~ssdcli.train.budget.TimeBudget`);
    the recipe (and so ``recipe.yaml`` and every later checkpoint) gets the planned iterations,
    warm-up, milestones and periods, and the running schedule is changed in place.
    """
    budget = parts.budget
    assert budget is not None
    step_s = budget.measured_step_s()
    t0 = time.perf_counter()
    if parts.val_available:
        evaluate_now(parts, state)
    eval_s = time.perf_counter() - t0 if parts.val_available else 0.0
    cfg = parts.recipe.train
    total, evals = plan_length(
        budget.seconds,
        budget.elapsed(),
        state.iteration,
        step_s,
        eval_s,
        reference_evaluations(cfg, budget.reference),
    )
    overrides = scaled_schedule(cfg, budget.reference, total, evals)
    recipe = override_recipe(parts.recipe, overrides, source="train.time")
    factor = parts.scheduler.lr_lambdas[0]  # LrFactor: plain attributes, saved with last.pt
    factor.total_iterations = total
    factor.warmup_iterations = recipe.train.warmup_iterations
    factor.milestones = list(recipe.train.milestones)
    budget.step_s, budget.eval_s, budget.evaluations = step_s, eval_s, evals
    budget.set_plan(state.iteration, total)
    parts = replace(parts, recipe=recipe, total_iterations=total)
    if parts.info.is_main:
        (parts.run_dir / "recipe.yaml").write_text(dump_recipe(recipe))
    parts.progress.set_total(total)
    parts.progress.set_log_every(recipe.train.log_every)
    parts.progress.message(
        f"train.time {format_duration(budget.seconds)}: {step_s:.2f} s per step, "
        f"{eval_s:.1f} s per evaluation -> {total} iterations (recipe: {budget.reference}), "
        f"{evals} evaluation(s), warm-up {recipe.train.warmup_iterations}"
    )
    if state.iteration >= total:  # no time left for more steps: keep what there is
        save_training_checkpoint(parts, state)
    return parts


def replan_to_budget(parts: TrainParts, state: LoopState) -> TrainParts:
    """``train.time``: plan the length again from the speed since the first plan.

    The cosine (or multistep) schedule is stretched or shrunk to the new length from here on;
    the evaluation period stays, so the evaluations left are those still due plus the last.
    """
    budget = parts.budget
    assert budget is not None and budget.planned is not None
    budget.replan_at.discard(state.iteration)
    step_s = budget.recent_step_s(state.iteration)
    every = parts.recipe.train.eval_every
    due = (parts.total_iterations - 1) // every - state.iteration // every
    total = replan_length(
        budget.seconds, budget.elapsed(), state.iteration, step_s, budget.eval_s or 0.0, due + 1
    )
    recipe = override_recipe(parts.recipe, {"train.iterations": total}, source="train.time")
    parts.scheduler.lr_lambdas[0].total_iterations = total
    budget.step_s, budget.planned = step_s, total
    budget.replans += 1
    if parts.info.is_main:
        (parts.run_dir / "recipe.yaml").write_text(dump_recipe(recipe))
    parts.progress.set_total(total)
    parts.progress.message(
        f"train.time: {step_s:.2f} s per step since the first plan -> {total} iterations"
    )
    return replace(parts, recipe=recipe, total_iterations=total)


def _finish(parts: TrainParts, state: LoopState, clock: CpuClock) -> TrainResult:
    # Cores kept busy over this session (set-up, training, evaluations), all ranks together: each
    # rank counts itself and its loader workers, and the CPU seconds are summed over ranks.
    cpu = all_reduce_sum(torch.tensor([clock.cpu()], device=parts.device), parts.info)
    result = TrainResult(
        run_dir=parts.run_dir,
        iteration=state.iteration,
        total_iterations=parts.total_iterations,
        best_metric=state.best_metric,
        best_iteration=state.best_iteration,
        last_metrics=dict(state.last_metrics),
        interrupted=state.interrupted,
        seconds=state.elapsed(),
        cores_busy=float(cpu[0]) / max(clock.wall(), 1e-9),
        budget=parts.budget.describe() if parts.budget is not None else None,
    )
    if parts.info.is_main:
        metric_names = [k for k in parts.metrics.columns if k.startswith(("voc", "coco"))]
        plots = plot_run_curves(parts.metrics.path, parts.run_dir, metric_names)
        plots += visuals.run_files(parts.run_dir)
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
