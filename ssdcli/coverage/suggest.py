"""A search for prior sizes and aspect ratios that cover more of a data set's boxes.

The number of priors per cell stays the same, so the head keeps its shape: a recipe can take the
suggestion without retraining from a different architecture.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ssdcli.coverage.measure import GroundTruths, prior_coverage
from ssdcli.priors import LevelSpec, make_priors

CANDIDATE_RATIOS = (1.5, 2.0, 2.5, 3.0, 4.0)
SUGGEST_MAX_BOXES = 20000  # ground truths sampled for the prior search (all for the report)


def _shape_iou(wh_N2: np.ndarray, prior_wh_A2: np.ndarray) -> np.ndarray:
    """IoU ``[N, A]`` of boxes and priors with the same centre (shape only)."""
    inter = np.minimum(wh_N2[:, None, 0], prior_wh_A2[None, :, 0]) * np.minimum(
        wh_N2[:, None, 1], prior_wh_A2[None, :, 1]
    )
    areas = wh_N2.prod(1)[:, None] + prior_wh_A2.prod(1)[None, :]
    return inter / (areas - inter)


def _cell_shapes(min_size: float, max_size: float | None, ratios: tuple) -> np.ndarray:
    shapes = [(min_size, min_size)]
    if max_size is not None:
        shapes.append((np.sqrt(min_size * max_size),) * 2)
    for r in ratios:
        shapes += [
            (min_size * np.sqrt(r), min_size / np.sqrt(r)),
            (min_size / np.sqrt(r), min_size * np.sqrt(r)),
        ]
    return np.array(shapes)


def _size_candidates(
    scales: np.ndarray, levels: list[LevelSpec]
) -> list[list[tuple[float, float | None]]]:
    """(min, max) per level: the current sizes scaled, and SSD's linear spacing between the
    data's 2nd and 98th scale percentiles (SSD section 2.2, with s_min, s_max from the data)."""
    current = [(lvl.min_size, lvl.max_size) for lvl in levels]
    scaled = [[(a * f, None if b is None else b * f) for a, b in current] for f in (0.7, 0.85, 1.2)]
    low, high = np.quantile(scales, [0.02, 0.98])
    linear = np.linspace(low, high, len(levels) + 1)
    spaced = [(float(linear[k]), float(linear[k + 1])) for k in range(len(levels))]
    return [current, *scaled, spaced]


def _ratios_from_data(
    wh_N2: np.ndarray, levels: list[LevelSpec], sizes: list[tuple[float, float]]
) -> list[tuple[float, ...]]:
    """Per level, the ratio set (same count as now) that best fits the boxes nearest in scale."""
    centres = np.log([a if b is None else np.sqrt(a * b) for a, b in sizes])
    nearest = np.argmin(np.abs(np.log(np.sqrt(wh_N2.prod(1)))[:, None] - centres[None]), axis=1)
    chosen = []
    for k, level in enumerate(levels):
        mine = wh_N2[nearest == k]
        count = len(level.aspect_ratios)
        if count == 0 or len(mine) == 0:
            chosen.append(tuple(level.aspect_ratios))
            continue
        options = itertools.combinations(CANDIDATE_RATIOS, count)
        score = {c: _shape_iou(mine, _cell_shapes(*sizes[k], c)).max(1).mean() for c in options}
        chosen.append(max(score, key=score.get))
    return chosen


@dataclass
class Suggestion:
    """Proposed levels and the covered share before and after (on the sampled boxes)."""

    levels: list[LevelSpec]
    before: float
    after: float

    def fragment(self) -> str:
        """The proposal as a recipe fragment (``priors:`` section, pixel form)."""
        mins = ", ".join(f"{lvl.min_size:.1f}" for lvl in self.levels)
        maxs = ", ".join(f"{lvl.max_size:.1f}" for lvl in self.levels)
        ratios = ", ".join(
            "[" + ", ".join(f"{r:g}" for r in lvl.aspect_ratios) + "]" for lvl in self.levels
        )
        return (
            f"priors:\n  scales: null\n  min_sizes: [{mins}]\n  max_sizes: [{maxs}]\n"
            f"  aspect_ratios: [{ratios}]\n"
        )


def suggest_priors(
    gts: GroundTruths,
    levels: list[LevelSpec],
    size_hw: tuple[int, int],
    threshold: float = 0.5,
    clip: Any = True,
) -> Suggestion:
    """Tries data-driven prior sizes and/or aspect ratios; keeps the best covering set.

    Sizes: the current ones, scaled by 0.7, 0.85 and 1.2, or spaced linearly over the data's
    scales (sqrt of area, input pixels); ratios: the current ones, or per level the subset of
    :data:`CANDIDATE_RATIOS` (as many as now) maximising the mean shape IoU of the boxes nearest
    that level in scale. Every combination is compared by the covered share, then by mean best
    IoU; the first candidate is the recipe's own priors.
    """
    rng = np.random.default_rng(0)
    if len(gts.boxes_G4) > SUGGEST_MAX_BOXES:
        pick = np.sort(rng.choice(len(gts.boxes_G4), SUGGEST_MAX_BOXES, replace=False))
        gts = GroundTruths(
            *(a[pick] for a in (gts.boxes_G4, gts.boxes_px_G4, gts.labels_G, gts.records_G))
        )
    height, width = size_hw
    wh = (gts.boxes_G4[:, 2:] - gts.boxes_G4[:, :2]) * np.float32([width, height])
    candidates = []
    for sizes in _size_candidates(np.sqrt(wh.prod(1)), levels):
        ratio_sets = [tuple(lvl.aspect_ratios) for lvl in levels]
        for ratios in (ratio_sets, _ratios_from_data(wh, levels, sizes)):
            candidates.append([
                replace(lvl, min_size=float(s[0]), max_size=None if s[1] is None else float(s[1]),
                        aspect_ratios=tuple(r))
                for lvl, s, r in zip(levels, sizes, ratios, strict=True)
            ])  # fmt: skip
    results = []
    for candidate in candidates:
        cov = prior_coverage(gts, make_priors(candidate, size_hw, clip), candidate, threshold)
        mean_iou = float(cov.best_iou_G.mean()) if len(cov.best_iou_G) else 0.0
        results.append(((cov.covered, mean_iou), candidate))
    best = max(range(len(results)), key=lambda i: results[i][0])
    return Suggestion(results[best][1], results[0][0][0], results[best][0][0])
