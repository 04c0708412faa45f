"""What a training run is made of, split by how it changes.

* :class:`TrainParts`: built once by :func:`ssdcli.train.setup.build_parts` (model, data, optimiser,
  schedule, logging) and never reassigned; the objects inside (weights, optimiser moments) change
  as the loop steps, the set of them does not.
* :class:`LoopState`: the few values the loop advances (iteration, data position, best metric,
  time). With the weights and optimiser state, this is what ``last.pt`` saves and a resume restores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from rich.console import Console
    from torch import nn

    from ssdcli.boxes import BoxCoder
    from ssdcli.config import Recipe
    from ssdcli.data.pipeline.sampler import EpochBatchSampler
    from ssdcli.data.records import Manifest
    from ssdcli.model import Detector
    from ssdcli.train.budget import TimeBudget
    from ssdcli.train.distributed import DistInfo
    from ssdcli.train.ema import ModelEma
    from ssdcli.train.runlog import MetricsLog, TrainProgress
    from ssdcli.train.stop import StopSignal


@dataclass(frozen=True)
class TrainParts:
    """The parts of a run, built once before the loop.

    Attributes:
        model: the unwrapped network (state_dict, EMA, gradient clipping).
        train_model: what the step calls: the DDP and/or compiled wrapper of ``model``.
        detector: ``model`` plus its priors ``priors_P4`` (cx, cy, w, h; fractions of the input).
        metrics: the ``metrics.csv`` writer (rank 0 only; None on other ranks).
        total_iterations: the run's length in optimisation steps.
        global_batch: images per step over all processes.
        val_available: the recipe's validation split exists (periodic evaluation is on).
        autocast: a context manager factory for mixed precision (a no-op in float32).
        budget: the wall-clock budget (``train.time``) of this session; None without one.
    """

    recipe: Recipe
    run_dir: Path
    console: Console
    info: DistInfo
    device: torch.device
    manifest: Manifest
    detector: Detector
    model: nn.Module
    train_model: nn.Module
    criterion: nn.Module
    coder: BoxCoder
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    ema: ModelEma | None
    sampler: EpochBatchSampler
    loader: Any
    metrics: MetricsLog | None
    progress: TrainProgress | None
    stop: StopSignal
    total_iterations: int
    global_batch: int
    val_available: bool
    autocast: Callable[[], Any]
    budget: TimeBudget | None = None


@dataclass
class LoopState:
    """What the loop advances; saved in ``last.pt`` (with weights, optimiser and RNG states).

    Attributes:
        iteration: optimisation steps done.
        epoch, batch_in_epoch: the data position (the order depends only on seed and epoch).
        best_metric, best_iteration: the best ``train.best_metric`` so far and where.
        last_metrics: the latest evaluation's flat metrics.
        interrupted: the run stopped on request (Ctrl-C) before its length.
        t_start, seconds_before: wall-clock origin of this process, seconds of earlier sessions.
    """

    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_iteration: int | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    t_start: float = field(default_factory=time.perf_counter)
    seconds_before: float = 0.0

    def elapsed(self) -> float:
        """Training seconds so far, including those before a resume."""
        return self.seconds_before + time.perf_counter() - self.t_start
