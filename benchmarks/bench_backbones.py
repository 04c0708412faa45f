"""Training speed of the photos networks on the CPU, side by side in one run.

``photos_tiny`` (the from-scratch network) against EfficientNet-Lite0 (``photos_lite0``) with its
levers: frozen leading stages (no backward there, batch norms in eval, and run batch-norm-folded
in training), the feature-pyramid neck and the input size.
Random weights (speed does not depend on them), 3 classes, batch 8 (as ``photos_lite0``), random
boxes; one training step = matching, forward, loss, backward, AdamW step, channels-last, as
``ssd train`` runs it.
The variants alternate step by step so they all see the same machine load; printed: median
s/step, images/s, the ratio to ``photos_tiny`` and the cores kept busy.

    python benchmarks/bench_backbones.py [--batch 8] [--steps 4] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from bench_train import ours_step_fn, random_batch
from rich.console import Console
from rich.table import Table

NUM_CLASSES = 3
UNFOLDED = "unfolded"  # a pseudo-setting: run the frozen stages without batch-norm folding
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "photos_tiny 384 (from scratch)": ("photos_tiny", []),
    "lite0 384, frozen_stages 5, no neck": ("photos_lite0", ["model.neck=none"]),
    "lite0 384, frozen_stages 5, no neck, not folded": (
        "photos_lite0",
        ["model.neck=none", UNFOLDED],
    ),
    "lite0 384, frozen_stages 5, fpn": ("photos_lite0", ["model.neck=fpn"]),
    "lite0 384, frozen_stages 5, pan": ("photos_lite0", ["model.neck=pan"]),
    "lite0 384, frozen_stages 3, fpn": (
        "photos_lite0",
        ["model.neck=fpn", "model.frozen_stages=3"],
    ),
    "lite0 448, frozen_stages 5, fpn": ("photos_lite0", ["model.neck=fpn", "model.size_hw=448"]),
}


def runner(recipe_name: str, sets: list[str], batch: int) -> Callable[[], None]:
    """One training step of the recipe's network (random weights) on a random batch."""
    from ssdcli.config import load_recipe
    from ssdcli.model import build_detector

    overrides = [item for item in sets if item != UNFOLDED]
    recipe = load_recipe(recipe_name, [*overrides, "model.backbone_weights=null"])
    torch.manual_seed(0)
    detector = build_detector(recipe, NUM_CLASSES)
    if UNFOLDED in sets:
        detector.model.backbone.fold_frozen = False
    data = random_batch(batch, int(recipe.model.size_hw[0]), NUM_CLASSES)
    return ours_step_fn(data, detector, recipe, "adamw", recipe.train.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = {name: runner(recipe, sets, args.batch) for name, (recipe, sets) in VARIANTS.items()}
    for step in steps.values():  # warm-up (allocator, oneDNN kernels)
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu = dict.fromkeys(steps, 0.0)
    load_before = os.getloadavg()[0]
    for _ in range(args.steps):
        for name, step in steps.items():  # alternate so all see the same load
            start, cpu_start = time.perf_counter(), time.process_time()
            step()
            times[name].append(time.perf_counter() - start)
            cpu[name] += time.process_time() - cpu_start
    load = os.getloadavg()[0]
    table = Table(
        title=f"Training steps, batch {args.batch}, {torch.get_num_threads()} threads, load "
        f"average {load_before:.1f} -> {load:.1f} on {os.cpu_count()} CPUs"
    )
    for column in ("network", "median s/step", "images/s", "vs photos_tiny", "cores busy"):
        table.add_column(column, justify="left" if column == "network" else "right")
    speed = {name: args.batch / statistics.median(values) for name, values in times.items()}
    base = next(iter(speed.values()))
    for name in steps:
        table.add_row(
            name, f"{statistics.median(times[name]):.3f}", f"{speed[name]:.1f}",
            f"{speed[name] / base:.2f}x", f"{cpu[name] / sum(times[name]):.2f}",
        )  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
