"""Everything ``fit`` builds before the loop: data, model, optimiser, schedule, loader, logs.

Order matters: the data set is opened first (a missing path fails in a second, before any model
is built or a run folder is made), then the seeded model, optimiser, schedule and loader; a
resumed run finally restores every state from ``last.pt``.
"""

from __future__ import annotations

import contextlib
import random
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

import ssdcli.train.state as trainstate
from ssdcli.config import Recipe, TrainConfig
from ssdcli.data.pipeline.sampler import EpochBatchSampler
from ssdcli.device import parse_device
from ssdcli.errors import DataError, RecipeError
from ssdcli.train.context import LoopState, TrainParts
from ssdcli.train.distributed import (
    DistInfo,
    convert_sync_batchnorm,
    init_distributed,
    shutdown_distributed,
)
from ssdcli.train.ema import ModelEma
from ssdcli.train.optim import build_optimizer, build_scheduler
from ssdcli.train.runlog import TrainProgress
from ssdcli.train.stop import StopSignal
from ssdcli.train.tensorboard import make_metrics_log, require_tensorboard

if TYPE_CHECKING:
    from ssdcli.data.records import Manifest
    from ssdcli.model import Detector


def _worker_init(worker_id: int) -> None:
    # Ctrl-C is handled by the main process, which stops the loop cleanly and saves. One torch
    # thread per worker: the workers are the parallelism (OpenCV's count comes from the parent,
    # see _single_thread_opencv: changing it in a forked child can deadlock).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _single_thread_opencv() -> None:
    """One OpenCV thread in this process, before loader workers are forked.

    Workers inherit the setting. Calling ``cv2.setNumThreads`` inside a forked worker after the
    parent used OpenCV's thread pool (e.g. generating the synthetic set) deadlocks in
    ``pthread_cond_destroy``; the main process does no image work while training.
    """
    import cv2

    cv2.setNumThreads(1)


def resolve_device(device: str, info: DistInfo | None = None) -> torch.device:
    """The training device for a ``--device`` value (see :func:`ssdcli.device.parse_device`).

    Under ``torchrun`` a plain ``cuda`` means one GPU per process: ``cuda:LOCAL_RANK``.
    """
    name = parse_device(device)
    if name == "cuda" and info is not None:
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def build_parts(
    recipe: Recipe,
    run_dir: Path,
    device_name: str,
    resume: bool,
    console: Console,
    manifest: Manifest | None = None,
) -> tuple[TrainParts, LoopState]:
    """Opens the data, builds model, optimiser, schedule, loader; restores ``last.pt`` on resume.

    Returns:
        The run's parts and its loop state (at 0, or where ``last.pt`` left off).
    """
    from ssdcli.boxes import BoxCoder
    from ssdcli.checkpoint.starting_weights import resolve_init_recipe
    from ssdcli.data.prepare.manifest import build_manifest
    from ssdcli.loss import MultiBoxLoss

    cfg = recipe.train
    if manifest is None:
        manifest = build_manifest(recipe.data)  # DataError for missing paths, before heavy work
    require_tensorboard(cfg.tensorboard)  # a missing extra fails before any work is done
    info = init_distributed(parse_device(device_name).split(":")[0])
    run_dir = same_on_all_ranks(run_dir, info)
    _single_thread_opencv()
    device = resolve_device(device_name, info)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(cfg.seed)

    if recipe.model.init is not None:  # priors/normalisation the starting weights need
        recipe = resolve_init_recipe(recipe)
    log_main = console.print if info.is_main else (lambda line: None)
    recipe = input_for_weights(recipe, log_main)
    if recipe.priors.fit == "auto":  # every rank fits the same data the same way
        from ssdcli.coverage.fit import fit_priors

        log = console.print if info.is_main else (lambda line: None)
        fitted = fit_priors(recipe, manifest, recipe.data.train_split, log)
        recipe = fitted.recipe  # the sizes found define the model: recipe.yaml keeps them
        if info.is_main:  # what the fit measured is the run's record, not a recipe value
            fitted.save(run_dir)
    detector, train_model = _build_model(recipe, manifest, info, device, console)
    model = detector.model

    loader, sampler = _make_loader(recipe, manifest, info)
    total = cfg.iterations or cfg.epochs * sampler.batches_per_epoch
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total, sampler.batches_per_epoch)
    scaler, autocast = _mixed_precision(cfg, device, info, console)
    val_split = manifest.resolve_split(recipe.data.val_split)
    val = manifest.splits.get(val_split, []) if val_split else []
    parts = TrainParts(
        recipe=recipe, run_dir=run_dir, console=console, info=info, device=device,
        manifest=manifest, detector=detector, model=model, train_model=train_model,
        criterion=MultiBoxLoss(recipe.loss.neg_pos_ratio), coder=BoxCoder(recipe.priors.variances),
        optimizer=optimizer, scheduler=scheduler, scaler=scaler,
        ema=ModelEma(model, cfg.ema_decay) if cfg.ema else None,
        sampler=sampler, loader=loader, metrics=None, progress=None, stop=StopSignal(console),
        total_iterations=total, global_batch=recipe.data.batch_size,
        val_available=len(val) > 0, autocast=autocast,
    )  # fmt: skip
    state = LoopState()
    start = trainstate.restore_last(parts, state) if resume else None
    if start is not None and info.is_main:
        console.print(f"resumed from iteration {start} of {total} ({run_dir / 'last.pt'})")
    # The log writers need the resumed iteration, so they join the parts last.
    parts = replace(
        parts,
        metrics=(
            make_metrics_log(run_dir / "metrics.csv", start, cfg.tensorboard)
            if info.is_main
            else None
        ),
        progress=TrainProgress(console, total, state.iteration, cfg.log_every, info.is_main),
    )
    if not parts.val_available and info.is_main:
        console.print(f"[yellow]no '{recipe.data.val_split}' split: periodic evaluation is off[/]")
    return parts, state


def input_for_weights(recipe: Recipe, log: Callable[[str], Any]) -> Recipe:
    """The recipe with ``model.input`` set to what the backbone's starting weights expect.

    Only a recipe that left ``model.input`` at its default is changed (one line says so); one
    that set another normalisation keeps it, with a warning. The run's ``recipe.yaml`` and its
    checkpoints then carry the normalisation to ``eval``, ``detect`` and ``export``.
    """
    from ssdcli.config import InputConfig, override_recipe
    from ssdcli.model.efficientnet import expected_input

    expected = expected_input(recipe.model.backbone, recipe.model.backbone_weights)
    current = recipe.model.input
    if expected is None or (current.channel_order, current.mean, current.std) == expected:
        return recipe
    order, mean, std = expected
    where = f"{recipe.model.backbone} with backbone_weights {recipe.model.backbone_weights}"
    if current != InputConfig():
        log(
            f"[yellow]model.input differs from what {where} expects ({order}, mean "
            f"{list(mean)}, std {list(std)}); keeping the recipe's[/]"
        )
        return recipe
    log(f"model.input: {order}, mean {list(mean)}, std {list(std)} (what {where} expects)")
    values = {"model.input.channel_order": order, "model.input.mean": list(mean)}
    return override_recipe(recipe, {**values, "model.input.std": list(std)}, source=where)


def _build_model(
    recipe: Recipe, manifest: Manifest, info: DistInfo, device: torch.device, console: Console
) -> tuple[Detector, nn.Module]:
    """The detector on ``device`` (starting weights loaded) and the module the step calls.

    Returns:
        ``(detector, train_model)``: ``train_model`` wraps ``detector.model`` in DDP when
        distributed and in ``torch.compile`` when the recipe asks.
    """
    from ssdcli.checkpoint.starting_weights import initialize_from
    from ssdcli.model import build_detector

    detector = build_detector(recipe, num_classes=len(manifest.class_names))
    if recipe.model.init is not None:
        log = console.print if info.is_main else (lambda line: None)
        initialize_from(detector, recipe, list(manifest.class_names), log)
    model = detector.model
    if info.distributed and recipe.train.sync_batchnorm:
        model, _ = convert_sync_batchnorm(model, device.type)
    # NHWC convolutions on every device (train_step feeds NHWC images): measured ~25% faster
    # for the tiny backbone's training step on the CPU as well.
    model.to(device, memory_format=torch.channels_last)
    detector.model = model
    detector.priors_P4 = detector.priors_P4.to(device)
    train_model = model
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        # No buffer broadcast before every forward (a collective per step): with synchronised
        # batch norm the running statistics are equal on every rank anyway, and without it only
        # rank 0's are ever used (evaluation, checkpoints).
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=ids, broadcast_buffers=False
        )
    if recipe.train.compile:
        train_model = torch.compile(train_model)
    return detector, train_model


def resolve_amp(setting: str, device_type: str) -> str:
    """``train.amp`` as it will run: ``"auto"`` becomes ``"bf16"`` where ``device_type`` has
    native bfloat16 (measured on an AVX-512 BF16 CPU: the tiny network's training step 1.13x
    faster, the default recipe's accuracy unchanged within run-to-run noise), else ``"off"``."""
    if setting != "auto":
        return setting
    from ssdcli.device import has_native_bf16

    return "bf16" if has_native_bf16(device_type) else "off"


def _mixed_precision(
    cfg: TrainConfig, device: torch.device, info: DistInfo, console: Console
) -> tuple[torch.amp.GradScaler, Callable[[], Any]]:
    """The gradient scaler and an autocast factory for ``train.amp`` (no-ops in float32)."""
    amp = resolve_amp(cfg.amp, device.type)
    if cfg.amp == "auto" and info.is_main:
        how = "bfloat16 autocast" if amp == "bf16" else "float32 (no native bfloat16 here)"
        console.print(f"train.amp=auto: {how} on {device.type}")
    # bfloat16 autocast runs on the CPU too (oneDNN's bf16 convolutions); float16 needs CUDA.
    supported = {"bf16": ("cpu", "cuda"), "fp16": ("cuda",)}.get(amp, ())
    use_amp = device.type in supported
    if amp != "off" and not use_amp and info.is_main:
        console.print(f"[yellow]train.amp={amp} does not run on {device.type}: float32 instead[/]")
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp == "fp16")
    amp_dtype = torch.bfloat16 if amp == "bf16" else torch.float16

    def autocast() -> Any:
        if use_amp:
            return torch.autocast(device.type, dtype=amp_dtype)
        return contextlib.nullcontext()

    return scaler, autocast


def same_on_all_ranks(run_dir: Path, info: DistInfo) -> Path:
    """Rank 0's run folder (ranks may have numbered a new run differently)."""
    if not info.distributed:
        return run_dir
    shared = [str(run_dir)]
    torch.distributed.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_loader(
    recipe: Recipe, manifest: Manifest, info: DistInfo
) -> tuple[Any, EpochBatchSampler]:
    from ssdcli.data.pipeline.collate import collate
    from ssdcli.data.pipeline.loader import build_dataset

    data = recipe.data
    split = manifest.resolve_split(data.train_split) or data.train_split
    if split not in manifest.splits:
        raise DataError(
            f"data set {data.root} has no '{split}' split (it has: "
            f"{', '.join(manifest.splits) or 'none'}); set data.train_split"
        )
    if data.batch_size % info.world_size:
        raise RecipeError(
            f"data.batch_size={data.batch_size} does not split over {info.world_size} processes; "
            "use a multiple of the process count"
        )
    size_hw = (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1]))
    dataset = build_dataset(
        manifest,
        split,
        data,
        recipe.model.input,
        size_hw,
        train=True,
        seed=recipe.train.seed,
        resize=recipe.model.resize,
    )
    if len(dataset) < data.batch_size:
        raise DataError(
            f"split '{split}' has {len(dataset)} images, fewer than data.batch_size="
            f"{data.batch_size}; lower the batch size"
        )
    sampler = EpochBatchSampler(
        len(dataset), data.batch_size, recipe.train.seed, info.world_size, info.rank
    )
    workers = data.workers
    loader = torch.utils.data.DataLoader(
        dataset,  # keys (epoch, position): augmentation seeded from (seed, epoch, position)
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=workers > 0 and data.persistent_workers,
        pin_memory=data.pin_memory,
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
    )
    return loader, sampler


def flat_metrics(result: Any) -> dict[str, float]:
    """``{"voc07_map50": 0.91, ...}`` from an evaluation result."""
    metrics = getattr(result, "metrics", result)
    return {str(k): float(v) for k, v in dict(metrics).items() if isinstance(v, (int, float))}


def close_parts(parts: TrainParts) -> None:
    """Stops loader workers and leaves the process group."""
    iterator = getattr(parts.loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    if hasattr(parts.metrics, "close"):  # the TensorBoard writer
        parts.metrics.close()
    if parts.info.distributed:
        shutdown_distributed()
