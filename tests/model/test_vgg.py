"""VGG16 SSD300/SSD512: output shapes, measured maps, parameter count, weights loading."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torch import nn
from torchvision.models._api import WeightsEnum
from torchvision.models.detection import ssd300_vgg16

from ssdcli.config import ModelConfig, Recipe, load_recipe
from ssdcli.errors import CheckpointError, ModelError
from ssdcli.model import build_detector
from ssdcli.model.backbone import BackboneOptions
from ssdcli.model.vgg import VGG16Backbone, load_vgg16_weights, vgg16


def options(**values: object) -> BackboneOptions:
    """A factory's options for a recipe whose ``model`` section sets ``values``."""
    return BackboneOptions.from_config(ModelConfig(**values))


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def ssd300():
    torch.manual_seed(0)
    return build_detector(load_recipe("voc300"), num_classes=20)


def test_ssd300_maps_and_output_shapes(ssd300) -> None:
    model = ssd300.model
    assert model.feature_hws == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert model.anchors_per_level == [4, 6, 6, 6, 4, 4]
    assert ssd300.priors_P4.shape == (8732, 4)
    with torch.no_grad():
        cls_logits_BPK, box_deltas_BP4 = model.train()(torch.randn(1, 3, 300, 300))
    assert cls_logits_BPK.shape == (1, 8732, 21)
    assert box_deltas_BP4.shape == (1, 8732, 4)


def test_ssd300_parameter_count_equals_torchvision(ssd300) -> None:
    reference = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    # Same architecture, nothing differs: VGG16 conv1_1..conv5_3, L2Norm scale (512), fc6
    # (3x3 dilation 6, 1024), fc7 (1x1, 1024), four extras, 3x3 heads. 26,285,486 parameters.
    assert _params(ssd300.model) == _params(reference) == 26_285_486


def test_ssd300_paper_details(ssd300) -> None:
    body = ssd300.model.backbone
    assert body.to_conv4_3.pool3.ceil_mode is True  # conv4_3 is 38x38 at 300
    assert torch.equal(body.l2norm.weight, torch.full((512,), 20.0))
    pool5 = body.to_fc7.pool5
    assert (pool5.kernel_size, pool5.stride, pool5.padding) == (3, 1, 1)
    fc6, fc7 = body.to_fc7.fc6, body.to_fc7.fc7
    assert (fc6.out_channels, fc6.kernel_size, fc6.dilation) == (1024, (3, 3), (6, 6))
    assert (fc7.out_channels, fc7.kernel_size) == (1024, (1, 1))
    assert all(isinstance(h, nn.Conv2d) and h.kernel_size == (3, 3) for h in ssd300.model.cls_head)


def test_ssd512_has_seven_maps_and_24564_priors() -> None:
    detector = build_detector(load_recipe("voc512"), num_classes=20)
    model = detector.model
    assert [h for h, _ in model.feature_hws] == [64, 32, 16, 8, 4, 2, 1]
    with torch.no_grad():
        cls_logits_BPK, box_deltas_BP4 = model.eval()(torch.randn(1, 3, 512, 512))
    assert cls_logits_BPK.shape == (1, 24564, 21)
    assert box_deltas_BP4.shape == (1, 24564, 4)


def test_extra_levels_is_configurable_and_bounded() -> None:
    two = options(size_hw=(300, 300), extra_levels=2)
    assert len(vgg16(two).extras) == 2
    with pytest.raises(ModelError, match="at most 4 extra levels"):
        vgg16(options(size_hw=(300, 300), extra_levels=5))
    assert len(vgg16(options(size_hw=(512, 512))).extras) == 5


def test_vgg_weights_from_torchvision_layout_file(tmp_path) -> None:
    body = VGG16Backbone()
    names = [n for n in body.layer_names() if n.split(".")[1].startswith("conv")]
    # torchvision vgg16().features conv indices, written out by hand.
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert len(names) == len(indices)
    module = dict(body.named_modules())
    state = {}
    for index, name in zip(indices, names, strict=True):
        state[f"features.{index}.weight"] = torch.randn_like(module[name].weight)
        state[f"features.{index}.bias"] = torch.randn_like(module[name].bias)
    torch.save(state, tmp_path / "vgg16.pth")
    load_vgg16_weights(body, str(tmp_path / "vgg16.pth"))
    assert torch.equal(body.to_conv4_3.conv1_1.weight, state["features.0.weight"])
    assert torch.equal(body.to_conv4_3.conv4_3.bias, state["features.21.bias"])
    assert torch.equal(body.to_fc7.conv5_3.weight, state["features.28.weight"])


def test_vgg_weights_from_reduced_fc_file_include_fc6_fc7(tmp_path) -> None:
    body = VGG16Backbone()
    state = {
        f"{i}.{kind}": torch.randn_like(getattr(layer, kind))
        for i, layer in enumerate([*body.to_conv4_3, *body.to_fc7])
        if isinstance(layer, nn.Conv2d)
        for kind in ("weight", "bias")
    }
    torch.save(state, tmp_path / "vgg16_reducedfc.pth")
    load_vgg16_weights(body, str(tmp_path / "vgg16_reducedfc.pth"))
    assert torch.equal(body.to_fc7.fc6.weight, state["31.weight"])
    assert torch.equal(body.to_fc7.fc7.bias, state["33.bias"])


def test_vgg_weights_file_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="file not found"):
        load_vgg16_weights(VGG16Backbone(), str(tmp_path / "missing.pth"))
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="lacks"):
        load_vgg16_weights(VGG16Backbone(), str(tmp_path / "wrong.pth"))


def test_imagenet_weights_offline_names_both_fixes(monkeypatch) -> None:
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    recipe = Recipe.model_validate({"model": {"backbone_weights": "imagenet"}})
    with pytest.raises(ModelError) as error:
        build_detector(recipe, num_classes=20)
    message = str(error.value)
    assert "connect to the internet once" in message
    assert "local file path" in message
    assert "IMAGENET1K_FEATURES" in message
