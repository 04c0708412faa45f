"""``ssd train``: train a detector from a recipe into a run folder ``runs/<name>/``.

Distributed: ``torchrun --nproc-per-node N -m ssdcli train RECIPE`` (the global batch stays
``data.batch_size``). torch is imported inside the command only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from ssdcli import paths
from ssdcli.cli.common import SetOption, console, recipe_argument, resolve_recipe
from ssdcli.config import Recipe, load_recipe
from ssdcli.device import DEVICE_CHOICES, parse_device
from ssdcli.errors import UsageError

DEFAULT_RECIPE = "shapes_tiny"
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
    device: Annotated[str, typer.Option(help=f"{DEVICE_CHOICES} (CUDA when available).")] = "auto",
) -> None:
    """Train a detector; with no RECIPE, the tiny model on a generated shapes data set.

    Writes runs/<name>/ with recipe.yaml, metrics.csv, last.pt, best.pt and plots. Ctrl-C saves
    a checkpoint (exit 130); --resume continues it exactly where it stopped.
    """
    parse_device(device)  # a bad value fails here, before the data set is read
    if resume is not None:
        cfg, run_dir = _resume_recipe(resume, recipe, sets or [])
    else:
        cfg = resolve_recipe(recipe, sets, default=DEFAULT_RECIPE)
        run_dir = new_run_dir(cfg, recipe or DEFAULT_RECIPE, name)

    # The data set first (no torch yet): a missing path fails in a second, before a run folder
    # or a model exists. The synthetic set is generated here on first use.
    from ssdcli.data.manifest import build_manifest

    manifest = build_manifest(cfg.data)

    # Before torch loads OpenMP: idle threads sleep instead of spinning. Spinning costs little on
    # an idle machine but slows small-kernel CPU training several-fold when cores are shared
    # (loader workers, other jobs). An explicit OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ssdcli.train.loop import fit

    try:
        result = fit(
            cfg, run_dir, device, resume=resume is not None, console=console, manifest=manifest
        )
    except KeyboardInterrupt:
        console.print("[red]interrupted at once; the last saved checkpoint is kept[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if result.interrupted:
        console.print(
            f"[yellow]interrupted at iteration {result.iteration}; checkpoint saved. "
            f"Resume with: ssd train --resume {result.run_dir}[/]"
        )
        raise typer.Exit(EXIT_INTERRUPTED)


def _is_main_rank() -> bool:
    """False in the processes ``torchrun`` starts with RANK > 0 (rank 0 checks the folder)."""
    return os.environ.get("RANK", "0") == "0"


def _resume_recipe(run_dir: Path, recipe: str | None, sets: list[str]) -> tuple[Recipe, Path]:
    if recipe is not None:
        raise UsageError(
            f"--resume {run_dir} uses the run's own recipe.yaml; drop the RECIPE argument "
            "(change values with --set)"
        )
    paths.existing_dir(run_dir, "--resume", paths.RUN_FOLDER)
    saved = run_dir / "recipe.yaml"
    if not saved.is_file():
        raise UsageError(
            paths.path_message("--resume", run_dir, "has no recipe.yaml", paths.RUN_FOLDER)
        )
    return load_recipe(saved, sets), run_dir


def new_run_dir(recipe: Recipe, recipe_name: str, name: str | None) -> Path:
    """``runs/<name>``, or the first free ``runs/<recipe stem>-<n>``; never an existing run."""
    runs = Path(recipe.train.runs_dir)
    if name is not None:
        if not re.fullmatch(r"[\w.\-]+", name):
            raise UsageError(f"--name {name!r}: use letters, digits, '.', '-' and '_' only")
        run_dir = runs / name
        if _is_main_rank() and run_dir.exists() and any(run_dir.iterdir()):
            raise UsageError(
                f"run folder {run_dir} already exists; pick another --name, or continue it with "
                f"--resume {run_dir}"
            )
        return run_dir
    stem = Path(recipe_name).stem
    counter = 1
    while (runs / f"{stem}-{counter}").exists():
        counter += 1
    return runs / f"{stem}-{counter}"
