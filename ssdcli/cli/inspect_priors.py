"""``ssd inspect-priors``: the priors (default boxes) a recipe gives, as a table and a drawing.

Parses the options into an :class:`~ssdcli.inspect.run.InspectRequest` and calls
:func:`ssdcli.inspect.run.run`, which shows its tables and lines through a console reporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdcli.cli.common import SetOption, console, parse_int_list, recipe_argument
from ssdcli.errors import UsageError

DEFAULT_RECIPE = "voc300"


def parse_cells(values: list[str] | None) -> list[tuple[int, int] | None]:
    """``["19,19", "0,0;center"]`` -> ``[(19, 19), (0, 0), None]``; None means a level's centre.

    Raises:
        UsageError: an entry is neither ``ROW,COL`` nor ``center``.
    """
    cells: list[tuple[int, int] | None] = []
    for value in values or ["center"]:
        for entry in (part.strip() for part in value.split(";")):
            if entry in ("center", "centre"):
                cells.append(None)
                continue
            row_col = entry.split(",")
            if len(row_col) != 2 or not all(p.strip().isdigit() for p in row_col):
                raise UsageError(f"--cells {entry!r}: expected ROW,COL (e.g. 19,19) or center")
            cells.append((int(row_col[0]), int(row_col[1])))
    return cells


def inspect_priors(
    recipe: Annotated[str | None, recipe_argument(DEFAULT_RECIPE)] = None,
    sets: SetOption = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="PNG file to write the drawing to.")
    ] = Path("priors.png"),
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Draw on this image (resized to the input size)."),
    ] = None,
    levels: Annotated[
        str | None,
        typer.Option("--levels", help="Levels to draw, comma-separated, e.g. 0,2. Default: all."),
    ] = None,
    cells: Annotated[
        list[str] | None,
        typer.Option(
            "--cells",
            metavar="ROW,COL",
            help="Feature-map cells to draw in each chosen level (repeatable or ';'-separated; "
            "'center' allowed). Default: the centre cell of each level.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A manifest.json from `ssd prepare-data`: report how well the priors cover its "
            "boxes (best-prior IoU) and write OUT_coverage.png.",
        ),
    ] = None,
    suggest: Annotated[
        bool,
        typer.Option(
            "--suggest",
            help="With --data: propose better-covering prior sizes and "
            "aspect ratios, as a recipe fragment.",
        ),
    ] = False,
) -> None:
    """Show a recipe's priors: a table per feature level and a PNG drawing of some cells."""
    from ssdcli.cli.render import ConsoleReporter
    from ssdcli.inspect import InspectRequest, run

    request = InspectRequest(
        recipe=recipe or DEFAULT_RECIPE,
        sets=tuple(sets or ()),
        out=out,
        image=image,
        levels=tuple(parse_int_list(levels, "--levels")) if levels else None,
        cells=tuple(parse_cells(cells)),
        data=data,
        suggest=suggest,
    )
    run(request, ConsoleReporter(console))
