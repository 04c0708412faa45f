"""optimize_for_inference: same outputs as the eager network, every convolution fused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdcli.config import Recipe, override_recipe
from ssdcli.model import build_detector
from ssdcli.model import fused_copy as fused_copy_module
from ssdcli.model.fused_copy import FusedConv2d, InferenceModel, optimize_for_inference

CASES = {
    # conv + BN + ReLU and separable layers
    "tiny": {"model.backbone": "tiny", "model.size_hw": [128, 128]},
    # hardswish, ReLU6, squeeze-excitation, separable heads
    "mobilenet_v3_large": {
        "model.backbone": "mobilenet_v3_large",
        "model.size_hw": [128, 128],
        "model.width": 0.5,
    },
    # conv + ReLU without BN, dilated fc6, plain 3x3 heads
    "vgg16": {
        "model.backbone": "vgg16",
        "model.size_hw": [96, 96],
        "model.extra_levels": 1,
        "priors.aspect_ratios": [[2], [2], [2]],
        "priors.scales": [0.2, 0.4, 0.7, 1.0],
    },
}


def _random_eval_network(overrides: dict) -> nn.Module:
    detector = build_detector(override_recipe(Recipe(), overrides), num_classes=3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buffer in detector.model.named_buffers():
            if name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=gen) * 0.1)
    return detector.model.eval()


@pytest.mark.parametrize("case", list(CASES))
def test_same_outputs_and_every_convolution_fused(case):
    model = _random_eval_network(CASES[case])
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    fast = optimize_for_inference(model)
    assert isinstance(fast, InferenceModel)
    assert sum(isinstance(m, FusedConv2d) for m in fast.modules()) == convs
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in fast.modules())
    size_hw = tuple(CASES[case]["model.size_hw"])
    images = torch.randn(2, 3, *size_hw, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(images)
        actual = fast(images)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        assert torch.allclose(a, e, atol=1e-4 * float(e.abs().max()), rtol=1e-4)
    # The original network is untouched.
    assert any(p.requires_grad for p in model.parameters())
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs


def test_disagreeing_fused_op_falls_back_to_channels_last(monkeypatch):
    model = _random_eval_network(CASES["tiny"])
    original = FusedConv2d.forward
    monkeypatch.setattr(FusedConv2d, "forward", lambda self, x: original(self, x) + 1.0)
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, FusedConv2d) for m in fast.modules())
    assert fused_copy_module.optimize_for_inference(model, fuse=False, channels_last=False) is model
    images = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        assert all(
            torch.allclose(a, e, atol=1e-5)
            for a, e in zip(fast(images), model(images), strict=True)
        )
