"""An interrupted and resumed run ends with bit-identical weights to an uninterrupted one."""

from __future__ import annotations

import csv
import io
import os
import signal
from pathlib import Path

import pytest
import torch
from rich.console import Console
from train_helpers import model_state, tiny_recipe

from ssdcli.checkpoint.file import load_checkpoint
from ssdcli.train import loop as train_module
from ssdcli.train.loop import fit


def _quiet() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=200)


def _interrupt_at(monkeypatch, iteration: int) -> None:
    real_step = train_module.train_step

    def step(parts, state, batch):
        if state.iteration == iteration - 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: stop after this step
        return real_step(parts, state, batch)

    monkeypatch.setattr(train_module, "train_step", step)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(root, run folder)`` of the reference run, 10 iterations without a stop."""
    root = tmp_path_factory.mktemp("resume")
    full = root / "runs" / "full"
    fit(_recipe(root), full, device="cpu", console=_quiet())
    return root, full


def _recipe(root: Path):
    return tiny_recipe(root, ema=True, ema_decay=0.9, grad_clip=5.0, eval_every=5)


# 7 batches per epoch: 4 stops mid-epoch 0, 7 at the epoch's end, 9 mid-epoch 1.
@pytest.mark.parametrize("stop_at", [4, 7, 9])
def test_resume_is_bit_identical(uninterrupted, monkeypatch, stop_at: int) -> None:
    root, full = uninterrupted
    recipe = _recipe(root)

    parted = root / "runs" / f"parted{stop_at}"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stop_at)
        first = fit(recipe, parted, device="cpu", console=_quiet())
    assert first.interrupted and first.iteration == stop_at
    second = fit(recipe, parted, device="cpu", resume=True, console=_quiet())
    assert second.iteration == 10 and not second.interrupted

    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(parted / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]["model"]:
        assert torch.equal(a["ema"]["model"][key], b["ema"]["model"][key]), key
    assert a["best_metric"] == b["best_metric"]
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 10
    # metrics.csv reads as one run: same train-row iterations, same evaluation results.
    assert _csv_summary(parted / "metrics.csv") == _csv_summary(full / "metrics.csv")


def _csv_summary(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    train_rows = [r["iteration"] for r in rows if r["loss"]]
    eval_rows = [(r["iteration"], r["voc07_map50"]) for r in rows if r["voc07_map50"]]
    return train_rows, eval_rows


def test_resume_with_a_worker_process(tmp_path: Path, monkeypatch) -> None:
    recipe = tiny_recipe(tmp_path, iterations=6, eval_every=100)
    recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"workers": 1})})
    full = tmp_path / "full"
    fit(recipe, full, device="cpu", console=_quiet())
    parted = tmp_path / "parted"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 3)
        fit(recipe, parted, device="cpu", console=_quiet())
    fit(recipe, parted, device="cpu", resume=True, console=_quiet())
    a, b = model_state(full / "last.pt"), model_state(parted / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
