"""``ssd train``: train a detector from a recipe into a run folder ``runs/<name>/``.

Distributed: ``torchrun --nproc-per-node N -m ssdcli train RECIPE`` (the global batch stays
``data.batch_size``). torch is imported inside the command only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ssdcli import paths
from ssdcli.cli.common import SetOption, console, recipe_argument, resolve_recipe
from ssdcli.config import Recipe, load_recipe
from ssdcli.device import DEVICE_CHOICES, DEVICE_METAVAR, parse_device
from ssdcli.errors import UsageError

if TYPE_CHECKING:
    from ssdcli.data.records import Manifest

DEFAULT_RECIPE = "shapes_tiny"
DATA_RECIPE = "photos_tiny"
"""The recipe ``ssd train --data PATH`` starts from when none is named (see recipes/)."""
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
    parse_device(device)  # a bad value fails here, before the data set is read
    if time_budget is not None:  # checked with the recipe (exit 2 for a bad duration)
        sets = [*(sets or []), f"train.time={time_budget}"]
    elif _sets_length_only(sets or []):  # --set train.iterations=N alone: N steps, no budget
        sets = [*(sets or []), "train.time=null"]
    if resume is not None:
        if data is not None:
            raise UsageError(f"--resume {resume} uses the run's own data; drop --data")
        cfg, run_dir = _resume_recipe(resume, recipe, sets or [])
        manifest = None
    elif data is not None:
        cfg, run_dir, manifest = _data_run(data, recipe, sets, name)
    else:
        cfg = resolve_recipe(recipe, sets, default=DEFAULT_RECIPE)
        run_dir = new_run_dir(cfg, recipe or DEFAULT_RECIPE, name)
        manifest = None

    # The data set first (no torch yet): a missing path fails in a second, before a run folder
    # or a model exists. The synthetic set is generated here on first use.
    from ssdcli.config import override_recipe
    from ssdcli.data.prepare.manifest import anchor_data_paths, build_manifest

    if manifest is None:
        manifest = build_manifest(cfg.data)
    if resume is None:  # the run records where its data is: eval works from any folder
        anchored = {k: v for k, v in anchor_data_paths(cfg.data, run_dir).items() if v is not None}
        cfg = override_recipe(cfg, anchored, source="the data paths of this run")

    # Before torch loads OpenMP: idle threads sleep instead of spinning. Spinning costs little on
    # an idle machine but slows small-kernel CPU training several-fold when cores are shared
    # (loader workers, other jobs). An explicit OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ssdcli.train.loop import fit
    from ssdcli.train.spawn import process_count, spawn_fit

    processes = process_count(cfg.train.processes, parse_device(device).split(":")[0])
    try:
        if processes > 1:  # CPU data parallelism: the processes are started here
            result = spawn_fit(cfg, run_dir, processes, resume is not None, manifest)
        else:
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


def _data_run(
    data: Path, recipe: str | None, sets: list[str] | None, name: str | None
) -> tuple[Recipe, Path, Manifest]:
    """``ssd train --data PATH``: the data read as it comes, the recipe pointed at it.

    The manifest goes into the run folder (``manifest.json``) and the recipe names it, so
    ``ssd eval`` and ``ssd detect`` on the run need nothing else. Training uses ``train``,
    best.pt is chosen on ``val`` (or ``valid``), ``ssd eval`` reads ``test`` (else ``val``).
    """
    from ssdcli.cli.prepare_data import print_compact_report
    from ssdcli.config import override_recipe
    from ssdcli.data.prepare.layout import open_dataset

    if recipe is None:
        from ssdcli.cli.data_recipe import choose_data_recipe

        recipe, why = choose_data_recipe()
        console.print(why, highlight=False)
    cfg = resolve_recipe(recipe, sets, default=DATA_RECIPE)
    manifest = open_dataset(data)
    print_compact_report(manifest)
    val = manifest.resolve_split("val")
    if "train" not in manifest.splits or val is None:
        known = ", ".join(sorted(manifest.splits)) or "none"
        raise UsageError(
            f"--data {data}: training needs a 'train' and a 'val' split (it has: {known}); "
            "fix: rename the split folders, or give one folder of images to split automatically"
        )
    test = manifest.resolve_split("test") or val
    stem = data.stem if data.is_file() and data.stem not in ("data", "manifest") else None
    run_dir = new_run_dir(cfg, stem or data.resolve().name or "data", name)
    if _is_main_rank():
        manifest.save(run_dir / "manifest.json")
    cfg = override_recipe(
        cfg,
        {
            "data.manifest": str((run_dir / "manifest.json").resolve()),
            "data.class_names": list(manifest.class_names),
            "data.train_split": "train",
            "data.val_split": val,
            "data.test_split": test,
        },
        source=f"--data {data}",
    )
    return cfg, run_dir, manifest


def _sets_length_only(sets: list[str]) -> bool:
    """True when ``--set`` gives the run's length (iterations or epochs) but not ``train.time``."""
    keys = {item.partition("=")[0].strip() for item in sets}
    return bool(keys & {"train.iterations", "train.epochs"}) and "train.time" not in keys


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
