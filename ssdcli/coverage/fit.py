"""``priors.fit: auto``: prior sizes and aspect ratios fitted to a data set's boxes at start-up.

The search is :func:`ssdcli.coverage.suggest.suggest_priors` (the one behind
``ssd inspect-priors --suggest``) on the training split; the recipe's own priors are its first
candidate, so the fitted ones never cover fewer boxes. The sizes and ratios found are written into
the recipe (pixel form: ``min_sizes``/``max_sizes``), which the run saves, so ``eval``, ``detect``
and ``export`` build the same priors without fitting again. What the fit measured (coverage
before and after) is a :class:`PriorFit` that training records in the run folder
(``priors_fit.json``), not a recipe value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ssdcli.atomic import write_text_atomic
from ssdcli.config import Recipe, override_recipe
from ssdcli.coverage.measure import ground_truths
from ssdcli.coverage.suggest import suggest_priors
from ssdcli.data.records import Manifest
from ssdcli.priors import LevelSpec

RECORD_FILE = "priors_fit.json"
"""The file in a run folder that records the fit (:meth:`PriorFit.record`)."""


def recipe_levels(recipe: Recipe, num_classes: int) -> list[LevelSpec]:
    """The prior levels the recipe's model gives (one shape-only build; no weights loaded)."""
    from ssdcli.model import build_detector

    shape_only = override_recipe(recipe, {"model.init": None, "model.backbone_weights": None})
    return list(build_detector(shape_only, num_classes=max(1, num_classes)).levels)


@dataclass(frozen=True)
class PriorFit:
    """What ``priors.fit: auto`` did at the start of a run.

    Attributes:
        recipe: the recipe to train with (fitted priors, ``priors.fit: off``).
        summary: one line, e.g. ``"auto: 12.0% -> 96.5% of 812 'train' boxes have a prior at
            IoU >= 0.5"`` (plus a note when the recipe's priors were kept).
        split: the split whose boxes were covered; boxes: how many boxes it has.
        match_iou: the IoU at which a box counts as covered (``loss.match_iou``).
        covered_before, covered_after: share of the boxes covered by the recipe's priors and
            by the fitted ones (equal when the recipe's were kept).
        changed: the priors were replaced (False: no candidate covered more boxes).
        seconds: time the search took.
    """

    recipe: Recipe
    summary: str
    split: str
    boxes: int
    match_iou: float
    covered_before: float
    covered_after: float
    changed: bool
    seconds: float

    def record(self) -> dict[str, Any]:
        """The run's record of the fit: every field but the recipe, as JSON values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recipe"}

    def save(self, run_dir: Path) -> Path:
        """Writes :meth:`record` to ``run_dir/priors_fit.json`` (atomically); returns the path."""
        text = json.dumps(self.record(), indent=2) + "\n"
        return write_text_atomic(Path(run_dir) / RECORD_FILE, text)


def fit_priors(
    recipe: Recipe, manifest: Manifest, split: str, log: Callable[[str], None] = print
) -> PriorFit:
    """The priors fitted to the boxes of ``split``, and what the fit measured.

    Args:
        recipe: a recipe with ``priors.fit: auto``.
        manifest: the data set; ``split`` names the boxes to cover (the training split).
        log: where the one-line summary goes.

    Returns:
        A :class:`PriorFit` whose recipe has ``priors.min_sizes``/``max_sizes``/
        ``aspect_ratios`` replaced (same number of priors per cell, so the head keeps its
        shape) and ``priors.fit: off``; only ``priors.fit`` changes when no candidate covers
        more boxes than the recipe's priors.
    """
    start = time.perf_counter()
    levels = recipe_levels(recipe, len(manifest.class_names))
    size_hw = (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1]))
    gts = ground_truths(manifest, split)
    threshold = float(recipe.loss.match_iou)
    found = suggest_priors(gts, levels, size_hw, threshold, recipe.priors.clip)
    changed = found.after > found.before
    seconds = time.perf_counter() - start
    share = f"{100 * found.before:.1f}% -> {100 * found.after:.1f}%"
    summary = (
        f"auto: {share} of {len(gts.boxes_G4)} '{split}' boxes have a prior at IoU >= "
        f"{threshold:g}"
    )
    changes: dict[str, object] = {"priors.fit": "off"}
    if changed:
        changes |= {
            "priors.scales": None,
            "priors.min_sizes": [round(lvl.min_size, 2) for lvl in found.levels],
            "priors.max_sizes": [round(_max_size(lvl), 2) for lvl in found.levels],
            "priors.aspect_ratios": [list(lvl.aspect_ratios) for lvl in found.levels],
        }
        sizes = ", ".join(f"{lvl.min_size:.0f}" for lvl in found.levels)
        log(f"priors fitted to the data in {seconds:.1f} s: {share} covered; min sizes {sizes} px")
    else:
        summary += " (the recipe's priors kept: no candidate covers more)"
        log(f"priors: the recipe's cover {100 * found.before:.1f}% of the boxes; kept")
    return PriorFit(
        recipe=override_recipe(recipe, changes),
        summary=summary,
        split=split,
        boxes=len(gts.boxes_G4),
        match_iou=threshold,
        covered_before=float(found.before),
        covered_after=float(found.after if changed else found.before),
        changed=changed,
        seconds=seconds,
    )


def _max_size(level: LevelSpec) -> float:
    # A level without the extra ratio-1 prior (max_size None) keeps none: sqrt(min * min) = min
    # would add a duplicate; such levels do not occur in shipped recipes, so use min as max.
    return level.max_size if level.max_size is not None else level.min_size
