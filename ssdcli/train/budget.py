"""A wall-clock budget for a training run (``train.time``, ``ssd train --time 30m``).

The run starts with the recipe's schedule, times its steps after a short warm-up
(:data:`WARMUP_STEPS` untimed, then :data:`TIMED_STEPS` timed) and one evaluation, then fixes its
length: as many steps as fit in what is left, less the evaluations still to come and a safety
margin (:func:`plan_length`). The recipe's ``iterations`` (or epochs) become a reference: warm-up,
milestones, evaluation and checkpoint periods keep their proportions of it
(:func:`scaled_schedule`). The first steps are slower than the rest (memory allocation, the
loader starting), and other jobs come and go on a shared machine, so the length is planned again
at 1/4, 1/2, 3/4 and 9/10 of the run from the speed since the first plan
(:func:`replan_length`). Should the machine slow down after that, :meth:`TimeBudget.out_of_time`
ends the run early, keeping room for its final evaluation. On a faster machine the same budget
trains longer, with the same schedule shape.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssdcli.config import TrainConfig

WARMUP_STEPS = 3  # untimed first steps: kernel selection, loader start-up
TIMED_STEPS = 8  # steps timed to measure the speed
SAFETY_SHARE = 0.03  # of the budget, kept free for speed changes and the end-of-run files
EVAL_SHARE = 0.12  # evaluations take at most this share of the budget (at least one is kept)
REPLAN_AT = (0.25, 0.5, 0.75, 0.9)  # shares of the first plan's remaining steps


def plan_length(
    budget_s: float,
    elapsed_s: float,
    done: int,
    step_s: float,
    eval_s: float,
    reference_evals: int,
) -> tuple[int, int]:
    """How many steps the run has in all, and how many evaluations are left.

    Args:
        budget_s: the whole budget in seconds, counted from the start of the run.
        elapsed_s: seconds used so far (set-up, the timed steps, the timing evaluation).
        done: steps done so far.
        step_s: measured seconds per step (data loading included).
        eval_s: measured seconds per evaluation (0 when there is no validation split).
        reference_evals: evaluations the recipe's own schedule makes (at least 1).

    Returns:
        ``(total_steps, evaluations)``: ``total_steps >= done``; ``evaluations`` (>= 1, the last
        at the end) is the recipe's count, fewer when they would take over
        :data:`EVAL_SHARE` of the budget.
    """
    evals = max(1, reference_evals)
    if eval_s > 0:
        evals = max(1, min(evals, math.floor(EVAL_SHARE * budget_s / eval_s)))
    margin = SAFETY_SHARE * budget_s + 2 * step_s
    left = budget_s - elapsed_s - margin - evals * eval_s
    return done + max(0, math.floor(left / step_s)), evals


def replan_length(
    budget_s: float, elapsed_s: float, done: int, step_s: float, eval_s: float, evals_left: int
) -> int:
    """The run's new total steps from the speed measured since the first plan.

    ``evals_left`` evaluations (the final one included) of ``eval_s`` seconds are still to
    come; at least one more step is planned.
    """
    margin = SAFETY_SHARE * budget_s + 2 * step_s
    left = budget_s - elapsed_s - margin - evals_left * eval_s
    return done + max(1, math.floor(left / step_s))


def scaled_schedule(cfg: TrainConfig, reference: int, total: int, evals: int) -> dict[str, Any]:
    """``--set``-style overrides that fit the recipe's schedule to ``total`` steps.

    Warm-up, milestones and checkpoint period keep their share of the ``reference`` length
    (the recipe's); evaluations are ``evals`` evenly spaced, the last at the end.
    """
    ratio = total / max(reference, 1)
    per_epoch = reference // cfg.epochs if cfg.epochs else 1

    def scaled(iterations: int) -> int:
        return max(1, round(iterations * ratio))

    return {
        "train.iterations": total,
        "train.epochs": None,
        "train.warmup_iterations": min(round(cfg.warmup_iterations * ratio), max(total - 1, 0)),
        "train.milestones": [scaled(m * per_epoch) for m in cfg.milestones],
        "train.eval_every": max(1, math.ceil(total / evals)),
        "train.checkpoint_every": scaled(cfg.checkpoint_every),
        "train.log_every": min(cfg.log_every, max(1, total // 20)),
    }


def reference_evaluations(cfg: TrainConfig, reference: int) -> int:
    """Evaluations the recipe's own schedule makes over ``reference`` steps (at least 1)."""
    return max(1, reference // cfg.eval_every)


@dataclass
class TimeBudget:
    """The budget of one training session and what was measured against it.

    Attributes:
        seconds: the budget. ``t0``: ``perf_counter`` at the start of the run.
        reference: the recipe's length in steps (before planning).
        stamps: ``perf_counter`` after each early step (the timing window).
        step_s, eval_s: measured seconds per step and per evaluation (None before planning).
        planned: the planned total steps; evaluations: how many were planned.
        stopped_early: the run ended before ``planned`` to keep the budget.
    """

    seconds: float
    reference: int
    t0: float = field(default_factory=time.perf_counter)
    stamps: list[float] = field(default_factory=list)
    step_s: float | None = None
    eval_s: float | None = None
    planned: int | None = None
    evaluations: int | None = None
    stopped_early: bool = False
    replan_at: set[int] = field(default_factory=set)
    plan_iteration: int = 0
    plan_time: float = 0.0
    eval_seconds: float = 0.0  # evaluations since the first plan
    replans: int = 0

    def set_plan(self, iteration: int, total: int) -> None:
        """Records the first plan and the steps at which the length is planned again."""
        self.planned = total
        self.plan_iteration, self.plan_time = iteration, time.perf_counter()
        span = total - iteration
        self.replan_at = {iteration + round(f * span) for f in REPLAN_AT} - {iteration, total}

    def recent_step_s(self, iteration: int) -> float:
        """Seconds per step since the first plan, evaluations left out."""
        steps = max(iteration - self.plan_iteration, 1)
        spent = time.perf_counter() - self.plan_time - self.eval_seconds
        return max(spent / steps, 1e-6)

    @property
    def timing_end(self) -> int:
        """The step after which the speed is known and the run is planned."""
        return WARMUP_STEPS + TIMED_STEPS

    def elapsed(self) -> float:
        """Seconds since the start of the run."""
        return time.perf_counter() - self.t0

    def record_step(self, iteration: int) -> bool:
        """Notes a finished step; True when the run should pause to be planned now."""
        if self.planned is not None:
            return iteration in self.replan_at
        if iteration >= WARMUP_STEPS:
            self.stamps.append(time.perf_counter())
        return iteration >= self.timing_end

    def measured_step_s(self) -> float:
        """Mean wall seconds per step over the timed steps (data waits included)."""
        if len(self.stamps) < 2:
            return max(self.elapsed(), 1e-3)
        return (self.stamps[-1] - self.stamps[0]) / (len(self.stamps) - 1)

    def out_of_time(self) -> bool:
        """True when one more step and the final evaluation would overrun the budget."""
        if self.planned is None or self.step_s is None:
            return self.elapsed() >= self.seconds  # still timing: only a spent budget stops it
        needed = self.step_s + (self.eval_s or 0.0) + SAFETY_SHARE * self.seconds / 2
        return self.elapsed() + needed > self.seconds

    def describe(self) -> str:
        """One line for the summary: the budget, the time used and the plan."""
        from ssdcli.train.runlog import format_duration

        text = f"{format_duration(self.seconds)}, used {format_duration(self.elapsed())}"
        if self.planned is not None and self.step_s is not None:
            text += (
                f" (planned {self.planned} iterations at {self.step_s:.2f} s each, "
                f"{self.evaluations} evaluations at {self.eval_s or 0.0:.1f} s, "
                f"planned again {self.replans} times"
            )
            text += "; stopped early to keep the budget)" if self.stopped_early else ")"
        return text
