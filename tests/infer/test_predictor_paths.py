"""The eager predictor's choice of network copy per batch size (ssdcli.infer.network_copy)."""

from __future__ import annotations

import numpy as np
import torch

from ssdcli.config import recipe_from_dict
from ssdcli.infer.eager import Predictor
from ssdcli.infer.network_copy import FUSED_MIN_BATCH, choose_path
from ssdcli.model import build_detector
from ssdcli.model.fused_copy import FusedConv2d

TINY = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "width": 0.25},
    "priors": {"aspect_ratios": [[2]] * 6},
    "postprocess": {"score_threshold": 0.0},
}


def test_channels_last_for_one_image_fused_for_float32_batches_cpu_only() -> None:
    assert choose_path(1) == "channels_last"
    assert choose_path(FUSED_MIN_BATCH) == "fused"
    assert choose_path(8) == "fused"
    assert choose_path(8, "cuda") == "channels_last"
    # The fused copy's packed weights are float32: bfloat16 runs channels-last at every size.
    assert choose_path(8, "cpu", "bf16") == "channels_last"


def _has_fused(network: torch.nn.Module) -> bool:
    return any(isinstance(m, FusedConv2d) for m in network.modules())


def test_predictor_runs_the_chosen_copy_and_both_agree() -> None:
    torch.manual_seed(0)
    recipe = recipe_from_dict(TINY, "test")
    predictor = Predictor(build_detector(recipe, 3), recipe, precision="float32")
    assert predictor.path_for(1) == "channels_last"
    assert predictor.path_for(8) == "fused"
    assert not _has_fused(predictor.network_for(1))
    assert predictor.network_for(8) is predictor.network_for(4)  # made once, kept
    assert _has_fused(predictor.network_for(8)) or not torch.backends.mkldnn.is_available()
    batch = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        expected = predictor.model(torch.from_numpy(batch))
        for size in (1, 8):
            got = predictor.network_for(size)(torch.from_numpy(batch))
            for a, b in zip(got, expected, strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert Predictor(build_detector(recipe, 3), recipe, optimize=False).path_for(8) == "eager"
