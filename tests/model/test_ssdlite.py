"""SSDLite320 on MobileNetV3-Large and MobileNetV2: shapes, parameter counts, layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.detection import ssdlite320_mobilenet_v3_large

from ssdcli.config import load_recipe
from ssdcli.model import build_detector
from ssdcli.model.head import SeparablePredictor


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def ssdlite_v3():
    torch.manual_seed(0)
    return build_detector(load_recipe("ssdlite320_mobilenetv3"), num_classes=90)


def test_ssdlite_v3_shapes(ssdlite_v3) -> None:
    model = ssdlite_v3.model
    assert model.feature_hws == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert model.anchors_per_level == [6] * 6
    with torch.no_grad():
        maps = model.eval().features(torch.randn(1, 3, 320, 320))
        cls_logits_BPK, box_deltas_BP4 = model.predict(maps)
    # C4 expansion (672), reduced-tail last layer (480), extras 512/256/256/128.
    assert [m.shape[1] for m in maps] == [672, 480, 512, 256, 256, 128]
    assert cls_logits_BPK.shape == (1, 3234, 91)
    assert box_deltas_BP4.shape == (1, 3234, 4)
    assert ssdlite_v3.priors_P4.shape == (3234, 4)


def test_ssdlite_v3_parameter_count_equals_torchvision(ssdlite_v3) -> None:
    reference = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91)
    # Same settings (no backbone weights -> reduced tail, BN eps 0.001): nothing differs.
    assert _params(ssdlite_v3.model) == _params(reference) == 3_440_060


def test_ssdlite_v3_state_dict_maps_to_torchvision_by_prefix_rename(ssdlite_v3) -> None:
    reference = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91)
    theirs = {k: v.shape for k, v in reference.state_dict().items()}
    ours = {k: v.shape for k, v in ssdlite_v3.model.state_dict().items()}
    renames = [
        ("backbone.to_c4.", "backbone.features.0."),
        ("backbone.to_c5.", "backbone.features.1."),
        ("extras.", "backbone.extra."),
        ("cls_head.", "head.classification_head.module_list."),
        ("box_head.", "head.regression_head.module_list."),
        (".reduce.", ".0."),
        (".depthwise.", ".1."),
        (".project.", ".2."),
        (".conv.", ".0."),
        (".bn.", ".1."),
    ]

    def rename(key: str) -> str:
        head = key.startswith(("cls_head.", "box_head."))
        for old, new in renames:
            if head and old == ".depthwise.":
                new = ".0."  # predictor: depthwise block is child 0, projection child 1
            if head and old == ".project.":
                new = ".1."
            key = key.replace(old, new)
        return key

    assert {rename(k): shape for k, shape in ours.items()} == theirs


def test_ssdlite_heads_are_depthwise_separable(ssdlite_v3) -> None:
    head = ssdlite_v3.model.cls_head[0]
    assert isinstance(head, SeparablePredictor)
    assert head.depthwise.conv.groups == 672
    assert isinstance(head.depthwise.act, nn.ReLU6)
    assert head.project.kernel_size == (1, 1)


def test_ssdlite_v2_shapes() -> None:
    detector = build_detector(load_recipe("ssdlite320_mobilenetv2"), num_classes=20)
    model = detector.model.eval()
    assert model.feature_hws == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    with torch.no_grad():
        maps = model.features(torch.randn(1, 3, 320, 320))
        cls_logits_BPK, box_deltas_BP4 = model.predict(maps)
    # Block 14's expansion (96 x 6), the last 1x1 convolution, extras.
    assert [m.shape[1] for m in maps] == [576, 1280, 512, 256, 256, 128]
    assert cls_logits_BPK.shape == (1, 3234, 21)
    assert box_deltas_BP4.shape == (1, 3234, 4)


def test_ssdlite_recipe_priors_are_torchvision_scales() -> None:
    recipe = load_recipe("ssdlite320_mobilenetv3")
    # DefaultBoxGenerator(min_ratio=0.2, max_ratio=0.95) for 6 maps: 0.2 + 0.15 k, then 1.0.
    assert recipe.priors.scales == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0])
    assert recipe.priors.steps is None
    assert recipe.model.input.mean == recipe.model.input.std == (127.5, 127.5, 127.5)
