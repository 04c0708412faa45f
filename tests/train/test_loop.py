"""fit on a tiny recipe: the run folder, checkpoints, EMA, non-finite loss and Ctrl-C."""

from __future__ import annotations

import csv
import io
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console
from train_helpers import model_state, tiny_recipe

from ssdcli.checkpoint.file import load_checkpoint, load_detector
from ssdcli.loss import LossParts, MultiBoxLoss
from ssdcli.train import loop as train_module
from ssdcli.train import step as step_module
from ssdcli.train.loop import fit
from ssdcli.train.setup import StopSignal
from ssdcli.train.step import NonFiniteLossError


def _quiet() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=200)


def test_fit_writes_the_run_folder(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, ema=True, ema_decay=0.9, grad_clip=5.0)
    run_dir = tmp_path / "runs" / "t"
    result = fit(recipe, run_dir, device="cpu", console=_quiet())
    assert result.iteration == 10 and not result.interrupted
    for name in ("recipe.yaml", "metrics.csv", "last.pt", "best.pt", "loss.png", "lr.png"):
        assert (run_dir / name).is_file(), name
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["iteration"] for r in rows if r["loss"]] == ["2", "4", "6", "8", "10"]
    assert [r["iteration"] for r in rows if r["voc07_map50"]] == ["5", "10"]
    assert all(float(r["images_per_s"]) > 0 and float(r["cores"]) > 0 for r in rows if r["loss"])
    assert result.cores_busy is not None and result.cores_busy > 0
    last = load_checkpoint(run_dir / "last.pt")
    assert last["iteration"] == 10
    assert last["data_order"]["epoch"] == 1  # 7 batches per epoch: 3 done in epoch 1
    assert last["data_order"]["batch_in_epoch"] == 3
    assert last["ema"]["updates"] == 10
    # best.pt holds the EMA weights, which differ from the raw weights.
    best = load_checkpoint(run_dir / "best.pt")
    assert best["iteration"] in (5, 10)
    if best["iteration"] == 10:
        for key, value in last["ema"]["model"].items():
            assert torch.equal(best["model"][key], value)
    loaded = load_detector(run_dir / "best.pt")
    assert loaded.class_names == ["circle", "cross", "square", "star", "triangle"]


def test_weights_change_and_runs_repeat_exactly(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, iterations=3, eval_every=100)
    fit(recipe, tmp_path / "a", device="cpu", console=_quiet())
    fit(recipe, tmp_path / "b", device="cpu", console=_quiet())
    a, b = model_state(tmp_path / "a" / "last.pt"), model_state(tmp_path / "b" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_with_a_message(tmp_path: Path, monkeypatch) -> None:
    real_forward = MultiBoxLoss.forward
    calls = {"n": 0}

    def nan_on_fourth(self, *args):
        parts = real_forward(self, *args)
        calls["n"] += 1
        if calls["n"] == 4:
            box = parts.box * float("nan")
            return LossParts(box + parts.cls, box, parts.cls, parts.num_pos)
        return parts

    monkeypatch.setattr(MultiBoxLoss, "forward", nan_on_fourth)
    recipe = tiny_recipe(tmp_path, checkpoint_every=2, eval_every=100)
    run_dir = tmp_path / "runs" / "nan"
    with pytest.raises(NonFiniteLossError) as error:
        fit(recipe, run_dir, device="cpu", console=_quiet())
    message = str(error.value)
    assert "non-finite box loss at iteration 4" in message
    assert "train.lr" in message and "boxes" in message and "train.amp" in message
    assert load_checkpoint(run_dir / "last.pt")["iteration"] == 2  # last good one kept


def _custom_handler(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "starting_handler",
    [signal.default_int_handler, signal.SIG_IGN, _custom_handler],
    ids=["python-default", "ignored-as-in-a-background-job", "custom"],
)
def test_ctrl_c_saves_and_reports_interrupted(
    tmp_path: Path, monkeypatch, starting_handler
) -> None:
    """Ctrl-C stops after the step and saves; ``fit`` then puts back the SIGINT handler it
    found, whatever it was (a background job starts with SIGINT ignored)."""
    found = signal.signal(signal.SIGINT, starting_handler)
    try:
        _ctrl_c_run(tmp_path, monkeypatch)
        assert signal.getsignal(signal.SIGINT) is starting_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, found)


def _ctrl_c_run(tmp_path: Path, monkeypatch) -> None:
    real_step = train_module.train_step

    def interrupting_step(parts, state, batch):
        if state.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(parts, state, batch)

    monkeypatch.setattr(train_module, "train_step", interrupting_step)
    run_dir = tmp_path / "runs" / "int"
    result = fit(tiny_recipe(tmp_path, eval_every=100), run_dir, device="cpu", console=_quiet())
    assert result.interrupted and result.iteration == 4
    assert load_checkpoint(run_dir / "last.pt")["iteration"] == 4


def test_second_ctrl_c_raises_at_once() -> None:
    stop = StopSignal(_quiet())
    with stop:
        stop._handle(signal.SIGINT, None)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop._handle(signal.SIGINT, None)


def test_model_init_starts_from_a_checkpoint(tmp_path: Path) -> None:
    first = tmp_path / "runs" / "first"
    fit(tiny_recipe(tmp_path, iterations=3, eval_every=100), first, device="cpu", console=_quiet())
    recipe = tiny_recipe(tmp_path, iterations=1, lr=1e-12, eval_every=100)
    recipe = recipe.model_copy(
        update={"model": recipe.model.model_copy(update={"init": str(first / "last.pt")})}
    )
    second = tmp_path / "runs" / "second"
    fit(recipe, second, device="cpu", console=_quiet())
    a, b = model_state(first / "last.pt"), model_state(second / "last.pt")
    for key, value in a.items():
        if value.dtype.is_floating_point and "running" not in key:
            torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)


def test_object_balance_weights_are_normalised_over_the_global_batch(monkeypatch) -> None:
    # This rank: ground truth 0 matched by priors 0-2, ground truth 1 by prior 3 (N = 4, raw
    # weights 1/3 x 3 + 1 = 2). Another rank is simulated through the all-reduce: N = 6 there with
    # raw weights summing to 2 (for example two objects of 3 priors). Global scale = 10 / 4.
    parts = SimpleNamespace(
        recipe=SimpleNamespace(loss=SimpleNamespace(object_balance=1.0)), info=None
    )
    matched = torch.tensor([[0, 0, 0, 1, -1, -1]])
    other_rank = torch.tensor([6.0, 2.0])
    monkeypatch.setattr(step_module, "all_reduce_sum", lambda sums, info: sums + other_rank)
    weights = step_module._positive_weights(parts, matched, 2)
    expected = torch.tensor([[1 / 3, 1 / 3, 1 / 3, 1.0, 0.0, 0.0]]) * (10 / 4)
    torch.testing.assert_close(weights, expected)
    # One process: the weights sum to N, so the loss keeps SSD's scale.
    monkeypatch.setattr(step_module, "all_reduce_sum", lambda sums, info: sums)
    assert float(step_module._positive_weights(parts, matched, 2).sum()) == pytest.approx(4.0)
    parts.recipe.loss.object_balance = 0.0
    assert step_module._positive_weights(parts, matched, 2) is None
