"""Mixed precision in training: ``train.amp`` bf16 on the CPU and the ``auto`` setting."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console
from train_helpers import tiny_recipe

import ssdcli.device
from ssdcli.loss import MultiBoxLoss
from ssdcli.train.loop import fit
from ssdcli.train.setup import resolve_amp


def _logit_dtypes(monkeypatch) -> list[torch.dtype]:
    """Records the dtype of the class logits every loss call receives."""
    seen: list[torch.dtype] = []
    original = MultiBoxLoss.forward

    def spy(self, cls_logits_BPK, *args, **kwargs):
        seen.append(cls_logits_BPK.dtype)
        return original(self, cls_logits_BPK, *args, **kwargs)

    monkeypatch.setattr(MultiBoxLoss, "forward", spy)
    return seen


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("off", torch.float32)])
def test_cpu_training_runs_the_network_in_the_chosen_precision(
    tmp_path: Path, monkeypatch, amp: str, dtype: torch.dtype
) -> None:
    seen = _logit_dtypes(monkeypatch)
    recipe = tiny_recipe(tmp_path, iterations=3, eval_every=100, amp=amp)
    console = Console(file=io.StringIO(), width=200)
    result = fit(recipe, tmp_path / "runs" / amp, device="cpu", console=console)
    assert result.iteration == 3
    assert seen and set(seen) == {dtype}
    with (tmp_path / "runs" / amp / "metrics.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle) if row["loss"]]
    assert losses and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "off")])
def test_auto_takes_bf16_only_where_the_device_runs_it_natively(
    monkeypatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(ssdcli.device, "has_native_bf16", lambda device_type: native)
    assert resolve_amp("auto", "cpu") == expected
    for setting in ("off", "bf16", "fp16"):  # explicit settings are taken as they are
        assert resolve_amp(setting, "cpu") == setting


def test_native_bf16_is_false_without_onednn_and_off_cpu_and_cuda(monkeypatch) -> None:
    def no_onednn() -> bool:
        raise RuntimeError("no oneDNN in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", no_onednn)
    assert ssdcli.device.has_native_bf16("cpu") is False
    assert ssdcli.device.has_native_bf16("mps") is False
    if not torch.cuda.is_available():
        assert ssdcli.device.has_native_bf16("cuda") is False
