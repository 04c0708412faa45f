"""``ssd inspect-priors --data``: the coverage report (tables, histogram, suggested priors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ssdcli.coverage.measure import Coverage, ground_truths, prior_coverage
from ssdcli.coverage.suggest import suggest_priors
from ssdcli.data.records import Manifest
from ssdcli.priors import LevelSpec


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
    reporter: Any,
) -> Coverage:
    """``ssd inspect-priors --data``: shows the coverage tables, writes the histogram PNG and,
    with ``suggest``, a recipe fragment of better-covering priors.

    ``reporter`` is an :class:`~ssdcli.inspect.run.InspectReporter` (``show`` and ``note``).
    """
    manifest = Manifest.load(manifest_path)
    gts = ground_truths(manifest)
    threshold = float(recipe.loss.match_iou)
    coverage = prior_coverage(gts, priors_P4, levels, threshold)
    for table in coverage_tables(coverage, manifest):
        reporter.show(table)
    size_hw = tuple(int(v) for v in recipe.model.size_hw)
    title = (
        f"{Path(manifest.source).name}: {len(gts.labels_G)} boxes, "
        f"{size_hw[0]}x{size_hw[1]} input, {len(priors_P4)} priors"
    )
    written = write_coverage_histogram(coverage, png_path, title)
    reporter.note(f"wrote {written}")
    if suggest:
        proposal = suggest_priors(gts, levels, size_hw, threshold, recipe.priors.clip)
        if proposal.after <= proposal.before:
            reporter.note(
                f"no better priors found: the recipe's cover "
                f"{100 * proposal.before:.1f}% of the boxes"
            )
        else:
            reporter.note(
                f"suggested priors: {100 * proposal.before:.1f}% -> "
                f"{100 * proposal.after:.1f}% of the boxes covered; recipe fragment:"
            )
            reporter.note(proposal.fragment())
    return coverage
