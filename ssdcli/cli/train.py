"""``ssd train``: train a detector from a recipe into a run folder ``runs/<name>/``.

Parses the options into a :class:`~ssdcli.train.run.TrainRequest`, calls
:func:`ssdcli.train.run.run` and says how it ended. Distributed: ``torchrun --nproc-per-node N
-m ssdcli train RECIPE`` (the global batch stays ``data.batch_size``). torch is imported inside
the command only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ssdcli.cli.common import SetOption, console, recipe_argument
from ssdcli.device import DEVICE_CHOICES, DEVICE_METAVAR

if TYPE_CHECKING:
    from ssdcli.data.records import Manifest

DEFAULT_RECIPE = "shapes_tiny"
DATA_RECIPE = "photos_tiny"
"""The recipes named in the help (``ssdcli.train.data_recipe`` holds the ones used; a test
checks they agree): ``ssd train`` alone, and ``--data`` without timm."""
EXIT_INTERRUPTED = 130


def train_command(
    recipe: Annotated[str | None, recipe_argument(DEFAULT_RECIPE)] = None,
    sets: SetOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="RUN_DIR",
            help="Continue the run in RUN_DIR from its last.pt (its recipe.yaml is used).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Run folder name under train.runs_dir (default: recipe name + number)."),
    ] = None,
    device: Annotated[
        str,
        typer.Option(metavar=DEVICE_METAVAR, help=f"{DEVICE_CHOICES} (CUDA when available)."),
    ] = "auto",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="PATH",
            help="Your data set, as exported: a folder (VOC, COCO, YOLO, split folders), a "
            f"data.yaml, a COCO JSON or a manifest.json. RECIPE defaults to photos_lite0 "
            f"(pretrained, when its weights package is installed) or {DATA_RECIPE}; "
            "classes and splits come from the data, priors are fitted to its boxes.",
        ),
    ] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            "--time",
            metavar="DURATION",
            help="Wall-clock budget for training and its evaluations (train.time), e.g. 30m, "
            "1h, 90s: the length is fitted to it. --data's recipes default to 30m.",
        ),
    ] = None,
) -> None:
    """Train a detector; with no RECIPE, the tiny model on a generated shapes data set.

    Writes runs/<name>/ with recipe.yaml, metrics.csv, last.pt, best.pt and plots. Ctrl-C saves
    a checkpoint (exit 130); --resume continues it exactly where it stopped.
    """
    from ssdcli.train import InterruptedAtOnce, TrainRequest, run

    request = TrainRequest(
        recipe=recipe,
        sets=tuple(sets or ()),
        resume=resume,
        name=name,
        device=device,
        data=data,
        time_budget=time_budget,
    )
    try:
        result = run(request, _Reporter())
    except InterruptedAtOnce:
        console.print("[red]interrupted at once; the last saved checkpoint is kept[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if result.interrupted:
        console.print(
            f"[yellow]interrupted at iteration {result.iteration}; checkpoint saved. "
            f"Resume with: ssd train --resume {result.run_dir}[/]"
        )
        raise typer.Exit(EXIT_INTERRUPTED)


class _Reporter:
    """What :func:`ssdcli.train.run.run` says goes to stdout; training prints on ``console``."""

    console = console

    def note(self, text: str) -> None:
        console.print(text, highlight=False)

    def warn(self, text: str) -> None:
        console.print(f"[yellow]{text}[/]", highlight=False)

    def data_summary(self, manifest: Manifest) -> None:
        from ssdcli.cli.render import print_compact_report

        print_compact_report(manifest)
