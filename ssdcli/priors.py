"""SSD priors (default boxes): one ``LevelSpec`` per feature map -> ``priors_P4``.

Priors are normalised ``cxcywh``, ordered (level, y, x, anchor). Per cell (SSD section 2.2,
"Choosing scales and aspect ratios for default boxes"), with ``s_k = min_size / side`` and
``s_k+1 = max_size / side``:

1. ``(s_k, s_k)``;
2. ``(sqrt(s_k * s_k+1), sqrt(s_k * s_k+1))`` (the extra aspect-ratio-1 box, when ``max_size``);
3. for each ratio ``r``: ``(s_k * sqrt(r), s_k / sqrt(r))`` then ``(s_k / sqrt(r), s_k * sqrt(r))``.

Cell centres are ``((j + 0.5) / f_x, (i + 0.5) / f_y)`` with ``f = side / step``. Sizes are in
pixels, so on a non-square input ``side`` is W for widths and x, H for heights and y: a prior
stays square in pixels. With ``clip`` every value (cx, cy, w, h) is clamped to [0, 1].

Compared with the two well-known implementations:

* ssd.pytorch ``PriorBox`` (square inputs, sizes in pixels): identical values and order. It also
  computes in float64 Python floats, casts to float32 and clamps all four cxcywh values, as here.
* torchvision ``DefaultBoxGenerator``: the same layout and order, but (a) its sizes are scales, i.e.
  fractions applied to each axis separately, so on a non-square input its priors are not square in
  pixels (ours use ``scale * min(H, W)`` pixels on both axes); (b) with ``clip`` it clamps only the
  width/height pairs, never the centres (``clip="wh"`` here). They differ for SSD300 itself: the
  10x10 level has step 32, so its last column/row of centres is 9.5 / (300 / 32) = 1.0133, which
  ssd.pytorch clamps to 1 and torchvision keeps; (c) it computes the centres in float32
  (differences of ~1 ulp); (d) its last level's extra box uses the (L+1)-th scale where
  ssd.pytorch names a ``max_size``; (e) with no steps it divides by the feature size directly;
  (f) it returns xyxy pixel boxes per image rather than one normalised cxcywh tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ssdcli.errors import RecipeError

if TYPE_CHECKING:
    from ssdcli.config import PriorsConfig

__all__ = ["LevelSpec", "anchors_per_cell", "build_level_specs", "describe", "make_priors"]


@dataclass(frozen=True)
class LevelSpec:
    """Priors of one feature map.

    Attributes:
        feature_hw: ``(H, W)`` of the feature map, in cells.
        step_hw: ``(y, x)`` distance between cell centres, in input pixels.
        min_size: side of the first (aspect ratio 1) prior, in input pixels.
        max_size: with ``min_size``, gives the extra ratio-1 prior ``sqrt(min * max)``; None:
            no extra prior.
        aspect_ratios: ratios ``r`` (each adds two priors: ``r`` and ``1 / r``).
    """

    feature_hw: tuple[int, int]
    step_hw: tuple[float, float]
    min_size: float
    max_size: float | None
    aspect_ratios: tuple[float, ...]

    @property
    def priors_per_cell(self) -> int:
        """Number of priors at every cell of this level."""
        return anchors_per_cell(self.aspect_ratios, self.max_size is not None)

    @property
    def num_priors(self) -> int:
        """Number of priors in this level (cells x priors per cell)."""
        return self.feature_hw[0] * self.feature_hw[1] * self.priors_per_cell


def anchors_per_cell(aspect_ratios: Sequence[float], has_max_size: bool = True) -> int:
    """Priors per feature-map cell: ``1 + has_max_size + 2 * len(aspect_ratios)``.

    Shared by the prior generator and the model head so the two can never disagree.
    """
    return 1 + int(has_max_size) + 2 * len(aspect_ratios)


def _cell_sizes(level: LevelSpec, size_hw: tuple[int, int]) -> Tensor:
    """Normalised (w, h) of the priors of one cell, in order; Tensor[A, 2] float64.

    Follows ssd.pytorch's arithmetic order (normalise first, then sqrt / multiply) so that the
    float32 result is bit-identical to its PriorBox on square inputs.
    """
    height, width = size_hw
    s_w, s_h = level.min_size / width, level.min_size / height
    pairs = [(s_w, s_h)]
    if level.max_size is not None:
        # SSD section 2.2: extra default box of scale s'_k = sqrt(s_k * s_k+1) for ratio 1.
        pairs.append(
            (
                math.sqrt(s_w * (level.max_size / width)),
                math.sqrt(s_h * (level.max_size / height)),
            )
        )
    for ratio in level.aspect_ratios:
        # SSD section 2.2: w = s_k * sqrt(a_r), h = s_k / sqrt(a_r), for a_r and 1 / a_r.
        root = math.sqrt(ratio)
        pairs.append((s_w * root, s_h / root))
        pairs.append((s_w / root, s_h * root))
    return torch.tensor(pairs, dtype=torch.float64)


def make_priors(
    levels: Sequence[LevelSpec], size_hw: tuple[int, int], clip: bool | str = True
) -> Tensor:
    """Generate all priors for an input of size ``size_hw``.

    Args:
        levels: one spec per feature map, in the order the model emits them.
        size_hw: ``(H, W)`` of the network input, in pixels.
        clip: True clamps every cxcywh value to [0, 1] (ssd.pytorch's PriorBox); ``"wh"`` clamps
            only widths and heights (torchvision's DefaultBoxGenerator); False keeps raw values.

    Returns:
        Tensor[P, 4] float32: normalised cxcywh priors, ordered (level, y, x, anchor), with
        ``P = sum(level.num_priors)`` (8732 for SSD300, 24564 for SSD512).
    """
    if clip not in (True, False, "wh"):
        raise ValueError(f"clip must be True, False or 'wh', not {clip!r}")
    height, width = size_hw
    per_level = []
    for level in levels:
        feat_h, feat_w = level.feature_hw
        # SSD section 2.2: centre ((j + 0.5) / |f_k|, (i + 0.5) / |f_k|), |f_k| = side / step.
        cx = (torch.arange(feat_w, dtype=torch.float64) + 0.5) / (width / level.step_hw[1])
        cy = (torch.arange(feat_h, dtype=torch.float64) + 0.5) / (height / level.step_hw[0])
        wh_A2 = _cell_sizes(level, size_hw)
        num_a = wh_A2.shape[0]
        # Broadcast to (H, W, A, 4) so that flattening gives the (y, x, anchor) order.
        grid = torch.empty(feat_h, feat_w, num_a, 4, dtype=torch.float64)
        grid[..., 0] = cx.view(1, feat_w, 1)
        grid[..., 1] = cy.view(feat_h, 1, 1)
        grid[..., 2:] = wh_A2.view(1, 1, num_a, 2)
        per_level.append(grid.reshape(-1, 4))
    if not per_level:
        return torch.zeros(0, 4)
    priors_P4 = torch.cat(per_level).to(torch.float32)
    if clip == "wh":
        priors_P4[:, 2:].clamp_(min=0.0, max=1.0)
    elif clip:
        priors_P4.clamp_(min=0.0, max=1.0)
    return priors_P4


def build_level_specs(
    priors_cfg: PriorsConfig,
    size_hw: tuple[int, int],
    feature_hws: Sequence[tuple[int, int]],
) -> list[LevelSpec]:
    """Level specs from the recipe's priors section and the measured feature-map sizes.

    Args:
        priors_cfg: ``recipe.priors`` (steps in pixels or None, sizes, aspect ratios).
        size_hw: ``(H, W)`` of the network input.
        feature_hws: ``(H, W)`` of each feature map the model emits, in order.

    Returns:
        One :class:`LevelSpec` per feature map. A step of None means ``side / feature size`` on
        each axis; a given step applies to both axes.

    Raises:
        RecipeError: the recipe's per-level lists do not have one entry per feature map.
    """
    num_levels = len(feature_hws)
    ratios = priors_cfg.aspect_ratios
    steps = priors_cfg.steps
    for name, values in (("priors.aspect_ratios", ratios), ("priors.steps", steps)):
        if values is not None and len(values) != num_levels:
            raise RecipeError(
                f"{name} has {len(values)} entries but the model has {num_levels} feature maps "
                f"{list(feature_hws)}; give one entry per feature map."
            )
    sizes = priors_cfg.sizes_px(size_hw, num_levels)
    if len(sizes) != num_levels:
        raise RecipeError(
            f"priors sizes give {len(sizes)} levels but the model has {num_levels} feature maps; "
            "give one min/max size (or L+1 scales) per feature map."
        )
    height, width = size_hw
    levels = []
    for k, (feat_hw, (min_px, max_px)) in enumerate(zip(feature_hws, sizes, strict=True)):
        if steps is None:
            step_hw = (height / feat_hw[0], width / feat_hw[1])
        else:
            step_hw = (float(steps[k]), float(steps[k]))
        levels.append(
            LevelSpec(
                feature_hw=(int(feat_hw[0]), int(feat_hw[1])),
                step_hw=step_hw,
                min_size=float(min_px),
                max_size=None if max_px is None else float(max_px),
                aspect_ratios=tuple(float(r) for r in ratios[k]),
            )
        )
    return levels


def describe(levels: Sequence[LevelSpec], size_hw: tuple[int, int]) -> list[dict[str, Any]]:
    """One row per level for tables (``ssd inspect-priors``).

    Returns:
        Dicts with keys ``level`` (0-based), ``feature_hw``, ``step_hw`` (pixels), ``min_size`` and
        ``max_size`` (pixels), ``aspect_ratios``, ``sizes_wh`` (each prior's (w, h) in input pixels,
        unclipped, in cell order), ``per_cell``, ``num_priors``, ``first_index`` (index of the
        level's first prior in ``priors_P4``).
    """
    height, width = size_hw
    rows = []
    first = 0
    for k, level in enumerate(levels):
        wh = _cell_sizes(level, size_hw)
        sizes_wh = [(float(w) * width, float(h) * height) for w, h in wh.tolist()]
        rows.append(
            {
                "level": k,
                "feature_hw": level.feature_hw,
                "step_hw": level.step_hw,
                "min_size": level.min_size,
                "max_size": level.max_size,
                "aspect_ratios": level.aspect_ratios,
                "sizes_wh": sizes_wh,
                "per_cell": level.priors_per_cell,
                "num_priors": level.num_priors,
                "first_index": first,
            }
        )
        first += level.num_priors
    return rows
