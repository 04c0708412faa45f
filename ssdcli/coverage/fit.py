"""``priors.fit: auto``: prior sizes and aspect ratios fitted to a data set's boxes at start-up.

The search is :func:`ssdcli.coverage.suggest.suggest_priors` (the one behind
``ssd inspect-priors --suggest``) on the training split; the recipe's own priors are its first
candidate, so the fitted ones never cover fewer boxes. The result is written into the recipe
(pixel form: ``min_sizes``/``max_sizes``), which the run saves, so ``eval``, ``detect`` and
``export`` build the same priors without fitting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ssdcli.config import Recipe, override_recipe
from ssdcli.coverage.measure import ground_truths
from ssdcli.coverage.suggest import suggest_priors
from ssdcli.data.records import Manifest
from ssdcli.priors import LevelSpec


def recipe_levels(recipe: Recipe, num_classes: int) -> list[LevelSpec]:
    """The prior levels the recipe's model gives (one shape-only build; no weights loaded)."""
    from ssdcli.model import build_detector

    shape_only = override_recipe(recipe, {"model.init": None, "model.backbone_weights": None})
    return list(build_detector(shape_only, num_classes=max(1, num_classes)).levels)


def fit_priors(
    recipe: Recipe, manifest: Manifest, split: str, log: Callable[[str], None] = print
) -> Recipe:
    """The recipe with priors fitted to the boxes of ``split`` (``priors.fit`` set back to off).

    Args:
        recipe: a recipe with ``priors.fit: auto``.
        manifest: the data set; ``split`` names the boxes to cover (the training split).
        log: where the one-line summary goes.

    Returns:
        The recipe with ``priors.min_sizes``/``max_sizes``/``aspect_ratios`` replaced (same
        number of priors per cell, so the head keeps its shape), ``priors.fit: off`` and
        ``priors.fitted`` saying what changed. Unchanged (apart from those two fields) when no
        candidate covers more boxes than the recipe's priors.
    """
    start = time.perf_counter()
    levels = recipe_levels(recipe, len(manifest.class_names))
    size_hw = (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1]))
    gts = ground_truths(manifest, split)
    threshold = float(recipe.train.match_iou)
    found = suggest_priors(gts, levels, size_hw, threshold, recipe.priors.clip)
    seconds = time.perf_counter() - start
    share = f"{100 * found.before:.1f}% -> {100 * found.after:.1f}%"
    summary = (
        f"auto: {share} of {len(gts.boxes_G4)} '{split}' boxes have a prior at IoU >= "
        f"{threshold:g}"
    )
    changes: dict[str, object] = {"priors.fit": "off"}
    if found.after > found.before:
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
    changes["priors.fitted"] = summary
    return override_recipe(recipe, changes)


def _max_size(level: LevelSpec) -> float:
    # A level without the extra ratio-1 prior (max_size None) keeps none: sqrt(min * min) = min
    # would add a duplicate; such levels do not occur in shipped recipes, so use min as max.
    return level.max_size if level.max_size is not None else level.min_size
