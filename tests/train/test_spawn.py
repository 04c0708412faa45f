"""train.processes: CPU training processes started by ssd train itself (ssdcli.train.spawn)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from rich.console import Console
from train_helpers import tiny_recipe

from ssdcli.checkpoint.file import load_checkpoint
from ssdcli.data.prepare.manifest import build_manifest
from ssdcli.train.loop import fit
from ssdcli.train.spawn import process_count, spawn_fit, threads_per_process


def test_process_count_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_count(1, "cpu", cpu_count=2) == 1
    assert process_count("auto", "cpu", cpu_count=2) == 2
    assert process_count(3, "cpu") == 3
    assert process_count("auto", "cuda", cpu_count=8) == 1  # accelerators: torchrun
    assert threads_per_process(2, cpu_count=2) == 1
    assert threads_per_process(2, cpu_count=8) == 4
    assert threads_per_process(4, cpu_count=2) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert process_count("auto", "cpu", cpu_count=2) == 1  # already under a launcher


def test_two_spawned_processes_match_one_process(tmp_path: Path) -> None:
    # The settings of test_ddp.py (SGD, small lr: float noise stays small, a wrong
    # normalisation or an unsynchronised batch norm does not).
    settings = {"optimizer": "sgd", "lr": 1e-4, "warmup_iterations": 0, "iterations": 2}
    settings |= {"eval_every": 100, "loss": {"object_balance": 1.0}}
    recipe = tiny_recipe(tmp_path, **settings)
    manifest = build_manifest(recipe.data)
    one = tmp_path / "runs" / "one"
    fit(recipe, one, device="cpu", console=Console(file=io.StringIO()), manifest=manifest)
    spawned = spawn_fit(recipe, tmp_path / "runs" / "two", 2, manifest=manifest)
    assert spawned.iteration == 2 and spawned.cores_busy is not None
    ref = load_checkpoint(one / "last.pt")["model"]
    two = load_checkpoint(tmp_path / "runs" / "two" / "last.pt")["model"]
    assert ref.keys() == two.keys()
    for key, value in ref.items():
        torch.testing.assert_close(two[key], value, rtol=1e-3, atol=2e-4, msg=key)
    assert "WORLD_SIZE" not in os.environ  # the parent's environment is untouched
