"""A recipe's priors: measured from its model, as a table per level, and the priors of chosen
cells (for the drawing). ``ssd inspect-priors``'s entry point is :func:`ssdcli.inspect.run.run`.

Feature-map sizes are measured from the recipe's model (one dummy forward inside
``build_detector``), so another input size or backbone shows its real priors. torch and
matplotlib are imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from ssdcli.config import Recipe, override_recipe
from ssdcli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from ssdcli.priors import LevelSpec
    from ssdcli.viz.priors import PriorGroup


@dataclass(frozen=True)
class PriorSet:
    """Priors of a recipe's model.

    Attributes:
        size_hw: network input ``(H, W)`` in pixels.
        levels: one :class:`~ssdcli.priors.LevelSpec` per feature map, as the model emits them.
        rows: ``ssdcli.priors.describe(levels, size_hw)``, one dict per level.
        priors_P4: np.ndarray[P, 4] float32, normalised ``cxcywh``, order (level, y, x, anchor).
    """

    size_hw: tuple[int, int]
    levels: list[LevelSpec]
    rows: list[dict[str, Any]]
    priors_P4: np.ndarray


def measure_priors(recipe: Recipe) -> PriorSet:
    """Build the recipe's detector (no weights loaded) and read its levels and priors."""
    from ssdcli.model import build_detector
    from ssdcli.priors import describe

    # Shapes only: starting weights would change nothing here and may need files or a download.
    shape_only = override_recipe(recipe, {"model.init": None, "model.backbone_weights": None})
    names = recipe.data.class_names
    detector = build_detector(shape_only, num_classes=len(names) if names else 1)
    size_hw = tuple(shape_only.model.size_hw)
    levels = list(detector.levels)
    priors_P4 = detector.priors_P4.detach().cpu().numpy()
    return PriorSet(size_hw, levels, describe(levels, size_hw), priors_P4)


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.2f}".rstrip("0")


def _ratios(ratios: tuple[float, ...]) -> str:
    return ", ".join(["1"] + [f"{_num(r)}, 1/{_num(r)}" for r in ratios])


def priors_table(prior_set: PriorSet, title: str) -> Table:
    """Rich table: one row per level (sizes in input pixels), then the total."""
    table = Table(title=title, title_justify="left", show_footer=True)
    total = sum(row["num_priors"] for row in prior_set.rows)
    table.add_column("level", justify="right", footer="total")
    table.add_column("map HxW", justify="right", no_wrap=True)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("min/max", justify="right", no_wrap=True)
    table.add_column("aspect ratios")
    table.add_column("prior sizes WxH")
    table.add_column("/cell", justify="right")
    table.add_column("priors", justify="right", footer=str(total))
    for row in prior_set.rows:
        step_y, step_x = row["step_hw"]
        max_size = row["max_size"]
        table.add_row(
            str(row["level"]),
            f"{row['feature_hw'][0]}x{row['feature_hw'][1]}",
            _num(step_x) if step_x == step_y else f"{_num(step_y)}x{_num(step_x)}",
            f"{_num(row['min_size'])} / {'-' if max_size is None else _num(max_size)}",
            _ratios(row["aspect_ratios"]),
            " ".join(f"{w:.0f}x{h:.0f}" for w, h in row["sizes_wh"]),
            str(row["per_cell"]),
            str(row["num_priors"]),
        )
    return table


def prior_groups(
    prior_set: PriorSet, levels: list[int], cells: list[tuple[int, int] | None]
) -> list[PriorGroup]:
    """The priors of ``cells`` (feature-map ROW, COL; None = centre) in each of ``levels``.

    Raises:
        UsageError: a level or cell does not exist.
    """
    import numpy as np

    from ssdcli.viz.priors import PriorGroup

    height, width = prior_set.size_hw
    groups = []
    for level in levels:
        if level >= len(prior_set.rows):
            raise UsageError(
                f"--levels: level {level} does not exist; this model has levels "
                f"0..{len(prior_set.rows) - 1}"
            )
        row = prior_set.rows[level]
        feat_h, feat_w = row["feature_hw"]
        per_cell, step_y, step_x = row["per_cell"], *row["step_hw"]
        chosen = {(feat_h // 2, feat_w // 2) if cell is None else cell: None for cell in cells}
        boxes, cell_boxes = [], []
        for y, x in chosen:
            if y >= feat_h or x >= feat_w:
                raise UsageError(
                    f"--cells {y},{x}: outside level {level}'s {feat_h}x{feat_w} grid; use rows "
                    f"0..{feat_h - 1} and columns 0..{feat_w - 1}, or choose levels with --levels"
                )
            first = row["first_index"] + (y * feat_w + x) * per_cell
            cx, cy, w, h = prior_set.priors_P4[first : first + per_cell].T.astype(np.float64)
            boxes.append(
                np.stack([(cx - w / 2) * width, (cy - h / 2) * height,
                          (cx + w / 2) * width, (cy + h / 2) * height], axis=1)
            )  # fmt: skip
            cell_boxes.append([x * step_x, y * step_y, (x + 1) * step_x, (y + 1) * step_y])
        label = (
            f"level {level}: {feat_h}x{feat_w}, step {_num(step_x)}, {per_cell} priors/cell, "
            f"min {_num(row['min_size'])} px"
        )
        groups.append(PriorGroup(level, label, np.concatenate(boxes), np.asarray(cell_boxes)))
    return groups


def read_image_resized(path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    """The image as RGB uint8 [H, W, 3], resized to the network input ``size_hw``."""
    import cv2

    from ssdcli.data.images import read_image_rgb

    image_rgb = read_image_rgb(path)
    return cv2.resize(image_rgb, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)
