"""Prior coverage of a data set: how well a recipe's priors can match its ground truths.

For every ground truth (difficult and crowd objects excluded, as in training) the best IoU with
any prior is computed in normalised coordinates of the network input (the whole image is resized
to the input, and IoU does not change under that per-axis scaling). A ground truth whose best IoU
is below the matching threshold is only matched through SSD's "best prior" rule, with one poorly
fitting prior. :func:`suggest_priors` searches prior sizes and aspect ratios (same number of
priors per cell, so the head keeps its shape) that raise the covered share.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssdcli.boxes import cxcywh_to_xyxy, matching_iou
from ssdcli.data.records import Manifest
from ssdcli.data.stats import COCO_MEDIUM, COCO_SMALL
from ssdcli.priors import LevelSpec, make_priors

CANDIDATE_RATIOS = (1.5, 2.0, 2.5, 3.0, 4.0)
SUGGEST_MAX_BOXES = 20000  # ground truths sampled for the prior search (all for the report)


@dataclass
class GroundTruths:
    """Ground truths of a manifest, flattened over images.

    Attributes:
        boxes_G4: float32 ``[G, 4]`` xyxy normalised to the image (so to the network input).
        boxes_px_G4: float32 ``[G, 4]`` xyxy in pixels of the original image.
        labels_G: int64 ``[G]``; records_G: int64 ``[G]`` index into ``manifest.records``.
    """

    boxes_G4: np.ndarray
    boxes_px_G4: np.ndarray
    labels_G: np.ndarray
    records_G: np.ndarray


def ground_truths(manifest: Manifest, split: str | None = None) -> GroundTruths:
    """The trained-on ground truths (no difficult, no crowd) of ``split`` (None: all records)."""
    indices = manifest.split_indices(split) if split else range(len(manifest.records))
    boxes, pixels, labels, owners = [], [], [], []
    for i in indices:
        record = manifest.records[i]
        keep = ~(record.difficult | record.iscrowd)
        height, width = record.size_hw
        pixels.append(record.boxes_xyxy[keep])
        boxes.append(record.boxes_xyxy[keep] / np.float32([width, height, width, height]))
        labels.append(record.labels[keep])
        owners.append(np.full(int(keep.sum()), i, np.int64))
    if not boxes:
        boxes, pixels = [np.zeros((0, 4), np.float32)], [np.zeros((0, 4), np.float32)]
        labels, owners = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    return GroundTruths(
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(pixels),
        np.concatenate(labels),
        np.concatenate(owners),
    )


@dataclass
class Coverage:
    """Best-prior IoU of every ground truth.

    Attributes:
        threshold: the matching IoU (``train.match_iou``).
        best_iou_G: float32 ``[G]``; best_level_G: int64 ``[G]`` level of that prior;
        positives_G: int64 ``[G]`` priors with IoU >= threshold.
    """

    gts: GroundTruths
    threshold: float
    best_iou_G: np.ndarray
    best_level_G: np.ndarray
    positives_G: np.ndarray

    @property
    def covered(self) -> float:
        """Share of ground truths with best IoU >= threshold (nan if there are none)."""
        return float(np.mean(self.best_iou_G >= self.threshold)) if len(self.best_iou_G) else 0.0

    def groups(self, class_names: list[str]) -> list[tuple[str, np.ndarray]]:
        """(name, bool mask ``[G]``): all, each class, each COCO size (original pixels)."""
        wh = self.gts.boxes_px_G4[:, 2:] - self.gts.boxes_px_G4[:, :2]
        area = wh[:, 0] * wh[:, 1]
        rows = [("all", np.ones(len(area), bool))]
        rows += [(f"class {name}", self.gts.labels_G == k) for k, name in enumerate(class_names)]
        rows += [
            ("size small (< 32^2 px)", area < COCO_SMALL),
            ("size medium", (area >= COCO_SMALL) & (area < COCO_MEDIUM)),
            ("size large (>= 96^2 px)", area >= COCO_MEDIUM),
        ]
        return rows


def prior_level_index(levels: list[LevelSpec]) -> np.ndarray:
    """int64 ``[P]``: the level of each prior (priors are ordered level first)."""
    return np.repeat(np.arange(len(levels)), [level.num_priors for level in levels])


def prior_coverage(
    gts: GroundTruths,
    priors_P4: np.ndarray | torch.Tensor,
    levels: list[LevelSpec],
    threshold: float = 0.5,
    chunk: int = 2048,
) -> Coverage:
    """Best IoU of each ground truth with the priors (normalised cxcywh ``[P, 4]``)."""
    priors_xyxy = cxcywh_to_xyxy(torch.as_tensor(np.asarray(priors_P4), dtype=torch.float32))
    level_of = prior_level_index(levels)
    best, where, positives = [], [], []
    boxes = torch.from_numpy(gts.boxes_G4)
    for start in range(0, len(boxes), chunk):
        iou = matching_iou(boxes[start : start + chunk], priors_xyxy)
        value, index = iou.max(dim=1)
        best.append(value.numpy())
        where.append(level_of[index.numpy()])
        positives.append((iou >= threshold).sum(dim=1).numpy())
    empty = [np.zeros(0, np.float32)]
    return Coverage(
        gts, threshold, np.concatenate(best or empty).astype(np.float32),
        np.concatenate(where or [np.zeros(0, np.int64)]),
        np.concatenate(positives or [np.zeros(0, np.int64)]),
    )  # fmt: skip


def write_coverage_histogram(coverage: Coverage, path: Path, title: str) -> Path:
    """PNG histogram of best-prior IoU, stacked by COCO size, with the threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = coverage.groups([])[1:]  # the three sizes
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.hist(
        [coverage.best_iou_G[mask] for _, mask in groups],
        bins=np.linspace(0, 1, 41),
        stacked=True,
        label=[name for name, _ in groups],
    )
    ax.axvline(
        coverage.threshold,
        color="black",
        linestyle="--",
        label=f"match IoU {coverage.threshold:g}: {100 * coverage.covered:.1f}% covered",
    )
    ax.set_xlabel("best IoU of a ground truth with any prior")
    ax.set_ylabel("ground truths")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


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


def coverage_tables(coverage: Coverage, manifest: Manifest, worst: int = 10) -> list[Any]:
    """Rich tables: coverage per group (all, class, size) and the worst-covered boxes."""
    from rich.table import Table

    table = Table(title=f"prior coverage (match IoU {coverage.threshold:g})", title_justify="left")
    for column in (
        "group",
        "boxes",
        "best IoU >= match",
        "mean best IoU",
        "median best IoU",
        "priors >= match per box",
    ):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, mask in coverage.groups(manifest.class_names):
        best = coverage.best_iou_G[mask]
        if not len(best):
            table.add_row(name, "0", "-", "-", "-", "-")
            continue
        table.add_row(
            name,
            str(len(best)),
            f"{100 * np.mean(best >= coverage.threshold):.1f}%",
            f"{best.mean():.3f}",
            f"{np.median(best):.3f}",
            f"{coverage.positives_G[mask].mean():.1f}",
        )
    low = Table(title=f"{worst} worst-covered boxes", title_justify="left")
    for column in ("image", "class", "box xyxy (px)", "WxH (px)", "best IoU", "level"):
        low.add_column(column, justify="left" if column in ("image", "class") else "right")
    for g in np.argsort(coverage.best_iou_G, kind="stable")[:worst]:
        box = coverage.gts.boxes_px_G4[g]
        record = manifest.records[coverage.gts.records_G[g]]
        low.add_row(
            record.image_id,
            manifest.class_names[coverage.gts.labels_G[g]],
            ", ".join(f"{v:.0f}" for v in box),
            f"{box[2] - box[0]:.0f}x{box[3] - box[1]:.0f}",
            f"{coverage.best_iou_G[g]:.3f}",
            str(coverage.best_level_G[g]),
        )
    return [table, low]


def report_coverage(
    manifest_path: Path,
    priors_P4: np.ndarray,
    levels: list[LevelSpec],
    recipe: Any,
    png_path: Path,
    suggest: bool,
    console: Any,
) -> Coverage:
    """``ssd inspect-priors --data``: prints the coverage tables, writes the histogram PNG and,
    with ``suggest``, prints a recipe fragment of better-covering priors."""
    manifest = Manifest.load(manifest_path)
    gts = ground_truths(manifest)
    threshold = float(recipe.train.match_iou)
    coverage = prior_coverage(gts, priors_P4, levels, threshold)
    for table in coverage_tables(coverage, manifest):
        console.print(table)
    size_hw = tuple(int(v) for v in recipe.model.size_hw)
    title = (
        f"{Path(manifest.source).name}: {len(gts.labels_G)} boxes, "
        f"{size_hw[0]}x{size_hw[1]} input, {len(priors_P4)} priors"
    )
    written = write_coverage_histogram(coverage, png_path, title)
    console.print(f"wrote {written}", markup=False, soft_wrap=True)
    if suggest:
        proposal = suggest_priors(gts, levels, size_hw, threshold, recipe.priors.clip)
        if proposal.after <= proposal.before:
            console.print(
                f"no better priors found: the recipe's cover "
                f"{100 * proposal.before:.1f}% of the boxes",
                soft_wrap=True,
            )
        else:
            console.print(
                f"suggested priors: {100 * proposal.before:.1f}% -> "
                f"{100 * proposal.after:.1f}% of the boxes covered; recipe fragment:",
                soft_wrap=True,
            )
            console.print(proposal.fragment(), markup=False, highlight=False, soft_wrap=True)
    return coverage
