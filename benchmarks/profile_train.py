"""Where a training step's time goes: data wait, matching, forward, loss, backward, optimiser.

Builds the run exactly as ``ssd train`` does (``ssdcli.train.setup.build_parts``, the recipe's
loader with its workers) and times ``--steps`` steps stage by stage with ``time.perf_counter``,
after ``--warmup`` untimed steps; then times one validation evaluation. Prints mean milliseconds
per step for each stage, their share, images/s and the CPU cores this process and its loader
workers kept busy.

    .venv/bin/python benchmarks/profile_train.py [RECIPE] [--steps 200] [--set key=value ...]

Stages are timed without synchronisation points beyond those the step already has (the CPU
runs them eagerly), so on the CPU they add up to the step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# As ssd train, before torch loads OpenMP: idle threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from ssdcli.config import load_recipe
from ssdcli.matcher import encode_matched, match
from ssdcli.train.cores import CpuClock
from ssdcli.train.loop import evaluate_now
from ssdcli.train.setup import build_parts, close_parts
from ssdcli.train.step import _positive_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="shapes_tiny")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--no-eval", action="store_true", help="skip timing one evaluation")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.sets)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        parts, state = build_parts(recipe, Path(tmp) / "run", "cpu", False, console)
        try:
            times = _profile(parts, state, args.steps, args.warmup)
            if not args.no_eval:
                start = time.perf_counter()
                evaluate_now(parts, state)
                times["evaluation (once)"] = [time.perf_counter() - start]
        finally:
            close_parts(parts)
    batch = recipe.data.batch_size
    step_stages = [k for k in times if k not in ("evaluation (once)", "step", "cores")]
    total = sum(times["step"]) / len(times["step"])
    print(
        f"\n{args.recipe}: batch {batch}, {torch.get_num_threads()} torch threads, "
        f"{recipe.data.workers} loader workers, {args.steps} steps, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("| stage | ms/step | share |\n|---|---|---|")
    for name in step_stages:
        mean = sum(times[name]) / args.steps
        print(f"| {name} | {mean * 1e3:.1f} | {mean / total:.0%} |")
    print(f"| whole step | {total * 1e3:.1f} | 100% |")
    if "evaluation (once)" in times:
        print(f"| one validation evaluation | {times['evaluation (once)'][0] * 1e3:.0f} | |")
    print(f"images/s: {batch / total:.1f}; cores busy: {times['cores'][0]:.2f}")


def _profile(parts, state, steps: int, warmup: int) -> dict[str, list[float]]:
    """Stage times (seconds) of ``steps`` steps, after ``warmup`` untimed ones."""
    times: dict[str, list[float]] = defaultdict(list)
    parts.model.train()
    iterator = iter(parts.loader)
    clock = None
    for i in range(warmup + steps):
        if i == warmup:
            times.clear()
            clock = CpuClock()
        t0 = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            parts.sampler.set_epoch(state.epoch + 1)
            state.epoch += 1
            iterator = iter(parts.loader)
            batch = next(iterator)
        t1 = time.perf_counter()
        images = batch.images_BCHW.contiguous(memory_format=torch.channels_last)
        matched = match(
            batch.gt_boxes_BG4, batch.gt_mask_BG, parts.detector.priors_P4,
            parts.recipe.loss.match_iou,
        )  # fmt: skip
        labels, deltas = encode_matched(
            matched, batch.gt_boxes_BG4, batch.gt_labels_BG, parts.detector.priors_P4, parts.coder
        )
        weights = _positive_weights(parts, matched, batch.gt_boxes_BG4.shape[1])
        t2 = time.perf_counter()
        with parts.autocast():  # the recipe's train.amp, as train_step runs it
            cls_logits, box_deltas = parts.train_model(images)
        t3 = time.perf_counter()
        loss = parts.criterion(cls_logits, box_deltas, labels, deltas, weights).total
        t4 = time.perf_counter()
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t5 = time.perf_counter()
        parts.optimizer.step()
        parts.scheduler.step()
        if parts.ema is not None:
            parts.ema.update(parts.model)
        t6 = time.perf_counter()
        for name, a, b in (
            ("data wait", t0, t1), ("match + encode", t1, t2), ("forward", t2, t3),
            ("loss", t3, t4), ("backward", t4, t5), ("optimiser + EMA", t5, t6),
        ):  # fmt: skip
            times[name].append(b - a)
        times["step"].append(t6 - t0)
    assert clock is not None
    times["cores"] = [clock.cores()]
    return times


if __name__ == "__main__":
    main()
