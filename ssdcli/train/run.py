"""``ssd train``'s one entry point: a recipe (or a data set as it comes) -> a run folder.

:func:`run` resolves the recipe (``--resume``: the run's own; ``--data``: one of the ``photos_*``
recipes pointed at the data, see :mod:`ssdcli.train.data_recipe`), names the run folder
(:func:`ssdcli.run_folder.unique_run_dir`), opens the data set before torch is needed, records
where the data is in the run's recipe, and trains in one process (:func:`ssdcli.train.loop.fit`)
or several (:func:`ssdcli.train.spawn.spawn_fit`). Distributed: ``torchrun --nproc-per-node N
-m ssdcli train RECIPE`` (the global batch stays ``data.batch_size``); only rank 0 checks and
writes the run folder (:func:`ssdcli.train.distributed.is_main_rank`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ssdcli import paths
from ssdcli.config import Recipe, load_recipe
from ssdcli.errors import UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.data.records import Manifest
    from ssdcli.train.loop import TrainResult


class TrainReporter(Reporter, Protocol):
    """A :class:`~ssdcli.reporting.Reporter` that also shows ``--data``'s data set and gives
    training a Rich console for its progress bar, evaluations and summary."""

    console: Any
    """A ``rich.console.Console``: where :func:`ssdcli.train.loop.fit` prints (rank 0)."""

    def data_summary(self, manifest: Manifest) -> None:
        """The data set of ``--data`` in a few lines: sizes, splits, classes, problems."""


class InterruptedAtOnce(Exception):
    """A second Ctrl-C stopped training without a checkpoint (the last saved one is kept).

    Raised instead of ``KeyboardInterrupt`` once training has started, so that the caller can
    tell it from a Ctrl-C while the run was still being set up.
    """


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    """What ``ssd train`` was asked.

    Attributes:
        recipe: a YAML file or a shipped recipe's name; None = :data:`~ssdcli.train.
            data_recipe.DEFAULT_RECIPE`, or with ``data`` the one :func:`~ssdcli.train.
            data_recipe.choose_data_recipe` picks.
        sets: ``--set KEY=VALUE`` overrides, in order.
        resume: a run folder to continue from its ``last.pt`` (its own recipe and data).
        name: the run folder's name under ``train.runs_dir`` (None = recipe stem + number).
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
        data: a data set as exported (folder, data.yaml, COCO JSON, manifest.json).
        time_budget: ``train.time`` (e.g. ``30m``); None keeps the recipe's, except that
            ``sets`` giving only the length (iterations or epochs) switches the budget off.
    """

    recipe: str | None = None
    sets: tuple[str, ...] = ()
    resume: Path | None = None
    name: str | None = None
    device: str = "auto"
    data: Path | None = None
    time_budget: str | None = None


def run(request: TrainRequest, reporter: TrainReporter) -> TrainResult:
    """Trains as ``request`` says; returns where the run is and how far it got.

    ``interrupted`` in the result is True after a Ctrl-C that left a checkpoint.

    Raises:
        InterruptedAtOnce: a Ctrl-C during training that left no new checkpoint.
        UsageError, RecipeError: bad options or recipe values (exit 2), before any work.
        DataError: the data set is missing or unusable (before a run folder or model exists).
    """
    from ssdcli.device import parse_device

    parse_device(request.device)  # a bad value fails here, before the data set is read
    sets = _with_time_budget(list(request.sets), request.time_budget)
    manifest: Manifest | None = None
    if request.resume is not None:
        if request.data is not None:
            raise UsageError(f"--resume {request.resume} uses the run's own data; drop --data")
        cfg, run_dir = _resume_recipe(request.resume, request.recipe, sets)
    elif request.data is not None:
        cfg, run_dir, manifest = _data_run(request, sets, reporter)
    else:
        from ssdcli.train.data_recipe import DEFAULT_RECIPE

        cfg = load_recipe(request.recipe, sets, default=DEFAULT_RECIPE)
        run_dir = _new_run_dir(cfg, request.recipe or DEFAULT_RECIPE, request.name)

    # The data set first (no torch yet): a missing path fails in a second, before a run folder
    # or a model exists. The synthetic set is generated here on first use.
    from ssdcli.config import override_recipe
    from ssdcli.data.prepare.manifest import anchor_data_paths, build_manifest

    if manifest is None:
        manifest = build_manifest(cfg.data)
    if request.resume is None:  # the run records where its data is: eval works from any folder
        anchored = {k: v for k, v in anchor_data_paths(cfg.data, run_dir).items() if v is not None}
        cfg = override_recipe(cfg, anchored, source="the data paths of this run")

    # Before torch loads OpenMP: idle threads sleep instead of spinning. Spinning costs little on
    # an idle machine but slows small-kernel CPU training several-fold when cores are shared
    # (loader workers, other jobs). An explicit OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ssdcli.train.loop import fit
    from ssdcli.train.spawn import process_count, spawn_fit

    resume = request.resume is not None
    processes = process_count(cfg.train.processes, parse_device(request.device).split(":")[0])
    try:
        if processes > 1:  # CPU data parallelism: the processes are started here
            return spawn_fit(cfg, run_dir, processes, resume, manifest)
        return fit(cfg, run_dir, request.device, resume=resume, console=reporter.console,
                   manifest=manifest)  # fmt: skip
    except KeyboardInterrupt:
        raise InterruptedAtOnce() from None


def _with_time_budget(sets: list[str], time_budget: str | None) -> list[str]:
    """``--time`` as ``train.time`` (checked with the recipe: exit 2 for a bad duration); the
    length alone (``--set train.iterations=N``) means N steps, no budget."""
    if time_budget is not None:
        return [*sets, f"train.time={time_budget}"]
    if sets_length_only(sets):
        return [*sets, "train.time=null"]
    return sets


def sets_length_only(sets: list[str]) -> bool:
    """True when ``--set`` gives the run's length (iterations or epochs) but not ``train.time``."""
    keys = {item.partition("=")[0].strip() for item in sets}
    return bool(keys & {"train.iterations", "train.epochs"}) and "train.time" not in keys


def _data_run(
    request: TrainRequest, sets: list[str], reporter: TrainReporter
) -> tuple[Recipe, Path, Manifest]:
    """``ssd train --data PATH``: the data read as it comes, the recipe pointed at it.

    The manifest goes into the run folder (``manifest.json``) and the recipe names it, so
    ``ssd eval`` and ``ssd detect`` on the run need nothing else. Training uses ``train``,
    best.pt is chosen on ``val`` (or ``valid``), ``ssd eval`` reads ``test`` (else ``val``).
    """
    from ssdcli.config import override_recipe
    from ssdcli.data.prepare.layout import open_dataset
    from ssdcli.train.data_recipe import SCRATCH_RECIPE, choose_data_recipe
    from ssdcli.train.distributed import is_main_rank

    data, recipe = Path(request.data), request.recipe
    if recipe is None:
        recipe, why = choose_data_recipe()
        reporter.note(why)
    cfg = load_recipe(recipe, sets, default=SCRATCH_RECIPE)
    manifest = open_dataset(data)
    reporter.data_summary(manifest)
    val = manifest.resolve_split("val")
    if "train" not in manifest.splits or val is None:
        known = ", ".join(sorted(manifest.splits)) or "none"
        raise UsageError(
            f"--data {data}: training needs a 'train' and a 'val' split (it has: {known}); "
            "fix: rename the split folders, or give one folder of images to split automatically"
        )
    test = manifest.resolve_split("test") or val
    stem = data.stem if data.is_file() and data.stem not in ("data", "manifest") else None
    run_dir = _new_run_dir(cfg, stem or data.resolve().name or "data", request.name)
    if is_main_rank():
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


def _new_run_dir(recipe: Recipe, recipe_name: str, name: str | None) -> Path:
    """``runs/<name>``, or the first free ``runs/<recipe stem>-<n>``; never an existing run."""
    from ssdcli.run_folder import named_run_dir, unique_run_dir

    runs = Path(recipe.train.runs_dir)
    if name is not None:
        from ssdcli.train.distributed import is_main_rank

        return named_run_dir(runs, name, must_be_new=is_main_rank())
    return unique_run_dir(runs, Path(recipe_name).stem, always_numbered=True)
