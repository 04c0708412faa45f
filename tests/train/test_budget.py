"""train.time: the plan from measured speeds (hand-worked), the scaled schedule, and a real run."""

from __future__ import annotations

import io
import math
import re
import time
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console
from train_helpers import tiny_recipe

from ssdcli.config import TrainConfig, parse_duration
from ssdcli.data.prepare.manifest import build_manifest
from ssdcli.train.budget import (
    SAFETY_SHARE,
    TimeBudget,
    plan_length,
    reference_evaluations,
    replan_length,
    scaled_schedule,
)
from ssdcli.train.loop import fit


def test_durations_read_as_people_write_them() -> None:
    assert [parse_duration(v) for v in ("30m", "1h30m", "90s", "45", "1.5h", 12)] == [
        1800.0, 5400.0, 90.0, 45.0, 5400.0, 12.0,
    ]  # fmt: skip
    assert TrainConfig(time="2m").time == 120.0
    with pytest.raises(ValueError, match="'half an hour' is not a duration; write e.g. 30m"):
        parse_duration("half an hour")


def test_plan_fills_what_is_left_after_evaluations_and_margin() -> None:
    # 100 s budget, 10 s used, 11 steps done, 1 s per step, 2 s per evaluation, recipe: 4 evals.
    # Evaluations may take 12 s (12%): 4 fit. Margin 3 s + 2 steps = 5 s.
    # Left for steps: 100 - 10 - 5 - 4 * 2 = 77 -> 11 + 77 = 88 steps.
    assert plan_length(100, 10, 11, 1.0, 2.0, 4) == (88, 4)
    # 5 s evaluations: only 2 fit in 12 s; 100 - 10 - 5 - 10 = 75 -> 86 steps.
    assert plan_length(100, 10, 11, 1.0, 5.0, 4) == (86, 2)
    # No validation split: no evaluation time; the recipe's count stays.
    assert plan_length(100, 10, 11, 1.0, 0.0, 4) == (96, 4)
    # The budget is spent already: no more steps, one final evaluation.
    assert plan_length(100, 99, 11, 1.0, 50.0, 4) == (11, 1)


def test_replanning_uses_the_speed_since_the_first_plan() -> None:
    # 100 s budget, 50 s used, 40 steps done, now 1 s per step, 2 evaluations of 2 s left:
    # 100 - 50 - (3 + 2) - 4 = 41 more steps.
    assert replan_length(100, 50, 40, 1.0, 2.0, 2) == 81
    assert replan_length(100, 99, 40, 1.0, 2.0, 2) == 41  # always one more step


def test_schedule_keeps_its_proportions() -> None:
    cfg = TrainConfig(
        iterations=1000, warmup_iterations=100, eval_every=250, checkpoint_every=100,
        milestones=[500, 800], log_every=20,
    )  # fmt: skip
    assert reference_evaluations(cfg, 1000) == 4
    assert scaled_schedule(cfg, 1000, 200, 4) == {
        "train.iterations": 200,
        "train.epochs": None,
        "train.warmup_iterations": 20,
        "train.milestones": [100, 160],
        "train.eval_every": 50,
        "train.checkpoint_every": 20,
        "train.log_every": 10,
    }
    # Epoch milestones become iterations (10 epochs of 100 steps, milestone at epoch 6).
    epochs = TrainConfig(epochs=10, milestones=[6])
    assert scaled_schedule(epochs, 1000, 500, 1)["train.milestones"] == [300]


def test_out_of_time_keeps_room_for_one_step_and_the_final_evaluation() -> None:
    budget = TimeBudget(seconds=100.0, reference=1000, t0=time.perf_counter() - 90.0)
    budget.planned, budget.step_s, budget.eval_s = 500, 2.0, 5.0
    # 90 s used + 2 s step + 5 s evaluation + 1.5 s (half the margin) = 98.5 <= 100.
    assert not budget.out_of_time()
    budget.t0 -= 2.0  # 92 s used: 100.5 > 100
    assert budget.out_of_time()
    assert pytest.approx(1.5) == SAFETY_SHARE * 100 / 2


def test_a_budgeted_run_ends_in_time_with_a_scaled_schedule(tmp_path: Path) -> None:
    # The recipe's own length (100000 steps) would take hours; a 10 s budget must cut it down
    # and keep the warm-up at a tenth and two evaluations.
    recipe = tiny_recipe(
        tmp_path, iterations=100_000, warmup_iterations=10_000, eval_every=50_000,
        checkpoint_every=10_000, time="10s",
    )  # fmt: skip
    manifest = build_manifest(recipe.data)  # the data set generated before the clock starts
    out = io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two shared cores can stall for seconds
    start = time.perf_counter()
    try:
        result = fit(
            recipe, tmp_path / "runs" / "t", device="cpu", console=Console(file=out, width=200),
            manifest=manifest,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    used = time.perf_counter() - start
    assert used < 10 + 20  # generous: a shared machine; the point is hours -> seconds
    assert 11 <= result.iteration <= result.total_iterations < 100_000
    if result.iteration < result.total_iterations:  # the machine slowed down after planning
        assert result.budget is not None and "stopped early" in result.budget
    text = out.getvalue()
    # The first plan scales the schedule; later plans move only the end (and the cosine).
    first = re.search(r"-> (\d+) iterations \(recipe: 100000\), (\d) evaluation", text)
    assert first is not None, text
    planned, evals = int(first[1]), int(first[2])
    saved = yaml.safe_load((tmp_path / "runs" / "t" / "recipe.yaml").read_text())["train"]
    assert saved["iterations"] == result.total_iterations
    assert saved["warmup_iterations"] == round(planned / 10)
    assert saved["eval_every"] == math.ceil(planned / evals) and evals <= 2
    assert saved["time"] == 10.0
    assert "train.time 10s:" in text and "time budget" in text
    assert result.budget is not None and result.budget.startswith("10s, used")
