"""Inference precision: ``--precision auto|float32|bf16`` for ``ssd detect`` and ``ssd eval``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ssdcli.device
from ssdcli.config import recipe_from_dict
from ssdcli.device import inference_autocast, resolve_precision
from ssdcli.errors import UsageError
from ssdcli.infer.eager import Predictor
from ssdcli.infer.open import open_predictor
from ssdcli.model import build_detector

TINY = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "width": 0.25},
    "priors": {"aspect_ratios": [[2]] * 6},
    "postprocess": {"score_threshold": 0.0},
}


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "float32")])
def test_auto_is_bf16_only_where_native(monkeypatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(ssdcli.device, "has_native_bf16", lambda device_type: native)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("AUTO ", "cpu") == expected  # typed values are normalised
    # Explicit settings are taken as they are, whatever the device check says.
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bf16", "cpu") == "bf16"


def test_devices_without_autocast_run_float32_and_bad_values_are_usage_errors() -> None:
    assert resolve_precision("bf16", "mps") == "float32"
    with pytest.raises(UsageError, match=r"--precision 'fp8': use one of auto, float32, bf16"):
        resolve_precision("fp8", "cpu")


def test_autocast_context_is_bf16_only_for_bf16() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with inference_autocast("bf16", "cpu"):
        assert conv(x).dtype == torch.bfloat16
    with inference_autocast("float32", "cpu"):
        assert conv(x).dtype == torch.float32


def test_bf16_predictor_agrees_with_float32_and_returns_float32() -> None:
    torch.manual_seed(0)
    recipe = recipe_from_dict(TINY, "test")
    detector = build_detector(recipe, 3)
    exact = Predictor(detector, recipe, precision="float32")
    fast = Predictor(detector, recipe, precision="bf16")
    assert (exact.precision, fast.precision) == ("float32", "bf16")
    assert fast.path_for(8) == "channels_last"
    batch = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    want = exact.raw_outputs(batch)
    got = fast.raw_outputs(batch)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == torch.float32
        # bfloat16 keeps 8 significant bits: agreement to a few per cent of the output's range,
        # and not bit-equal (it did run in bfloat16).
        scale = float(b.abs().max())
        assert float((a - b).abs().max()) <= 0.05 * scale
        assert not torch.equal(a, b)


def test_bf16_is_refused_for_exported_files_with_a_usage_error(tmp_path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07")  # starts like an ONNX protobuf; never opened further
    with pytest.raises(UsageError, match=r"--precision bf16 applies to checkpoints.*model\.onnx"):
        open_predictor(model, precision="bf16")
    with pytest.raises(UsageError, match="--precision 'half'"):
        open_predictor(model, precision="half")
