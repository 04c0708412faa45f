"""``ssd inspect-priors``'s one entry point: a recipe's priors as a table, a drawing, and their
coverage of a data set.

:func:`run` measures the priors (:func:`ssdcli.inspect.priors.measure_priors`), shows their
table, draws the chosen cells and, with ``data``, reports their coverage of its boxes
(:mod:`ssdcli.inspect.coverage_report`). torch and matplotlib are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ssdcli.errors import UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.inspect.priors import PriorSet


class InspectReporter(Reporter, Protocol):
    """A :class:`~ssdcli.reporting.Reporter` that also shows tables (Rich renderables)."""

    def show(self, renderable: Any) -> None:
        """A table: the priors per level, the coverage per group, the worst-covered boxes."""


@dataclass(frozen=True, kw_only=True)
class InspectRequest:
    """What ``ssd inspect-priors`` was asked.

    Attributes:
        recipe: a recipe file or a shipped recipe's name (also the titles' name).
        sets: ``--set KEY=VALUE`` overrides, in order.
        out: the drawing's PNG path; the coverage histogram goes to ``OUT_coverage.png``.
        image: draw on this image (resized to the input size) instead of a blank canvas.
        levels: levels to draw (None = all); cells: feature-map (ROW, COL) per level, None = centre.
        data: a manifest whose boxes the priors should cover; suggest: propose better priors.
    """

    recipe: str
    sets: tuple[str, ...] = ()
    out: Path
    image: Path | None = None
    levels: tuple[int, ...] | None = None
    cells: tuple[tuple[int, int] | None, ...] = (None,)
    data: Path | None = None
    suggest: bool = False


@dataclass
class InspectOutcome:
    """What :func:`run` did: the priors measured and the PNG files written."""

    priors: PriorSet
    written: list[Path]


def run(request: InspectRequest, reporter: InspectReporter) -> InspectOutcome:
    """Shows the priors table (and the coverage report with ``data``); writes the drawing.

    Raises:
        UsageError: ``suggest`` without ``data``, or a level or cell that does not exist.
    """
    from ssdcli import paths
    from ssdcli.config import load_recipe
    from ssdcli.errors import DataError
    from ssdcli.inspect.priors import measure_priors, prior_groups, priors_table, read_image_resized

    paths.output_file(request.out, "--out", "a PNG file to write")
    if request.image is not None:
        paths.existing_file(request.image, "--image", "an image file", DataError)
    if request.suggest and request.data is None:
        raise UsageError("--suggest needs --data MANIFEST (the boxes to cover)")
    cfg = load_recipe(request.recipe, list(request.sets))
    size_hw = (int(cfg.model.size_hw[0]), int(cfg.model.size_hw[1]))
    image_rgb = read_image_resized(request.image, size_hw) if request.image is not None else None
    prior_set = measure_priors(cfg)
    total = len(prior_set.priors_P4)
    title = f"Priors of {request.recipe} ({size_hw[0]}x{size_hw[1]} input)"
    reporter.show(priors_table(prior_set, title))
    reporter.note(f"total priors: {total} over {len(prior_set.rows)} levels")

    levels = list(request.levels) if request.levels is not None else None
    if levels is None:
        levels = list(range(len(prior_set.rows)))
    groups = prior_groups(prior_set, levels, list(request.cells))
    from ssdcli.viz.priors import draw_priors  # matplotlib, only when drawing

    title = f"{request.recipe}: {size_hw[0]}x{size_hw[1]} input, {total} priors"
    path = draw_priors(request.out, size_hw, groups, image_rgb=image_rgb, title=title)
    reporter.note(f"wrote {path}")
    outcome = InspectOutcome(prior_set, [path])
    if request.data is not None:
        from ssdcli.inspect.coverage_report import report_coverage

        out = request.out
        coverage_png = out.with_name(f"{out.stem}_coverage.png")
        report_coverage(
            request.data,
            prior_set.priors_P4,
            prior_set.levels,
            cfg,
            coverage_png,
            request.suggest,
            reporter,
        )
        outcome.written.append(coverage_png)
    return outcome
