"""The tiny CPU backbone: size budget and levels at the sizes it is meant for."""

from __future__ import annotations

import pytest
import torch

from ssdcli.config import ModelConfig, Recipe
from ssdcli.errors import ModelError, RecipeError
from ssdcli.model import build_detector
from ssdcli.model.backbone import BackboneOptions
from ssdcli.model.tiny import SpaceToDepthConv, tiny


def options(**values: object) -> BackboneOptions:
    """A factory's options for a recipe whose ``model`` section sets ``values``."""
    return BackboneOptions.from_config(ModelConfig(**values))


def _tiny_recipe(size: int, **model) -> Recipe:
    return Recipe.model_validate({"model": {"backbone": "tiny", "size_hw": [size, size], **model}})


@pytest.mark.parametrize(
    ("size", "heights"),
    [(160, [20, 10, 5, 3, 2, 1]), (256, [32, 16, 8, 4, 2, 1]), (300, [38, 19, 10, 5, 3, 2])],
)
def test_tiny_has_six_levels_and_runs_in_train_and_eval(size: int, heights: list[int]) -> None:
    detector = build_detector(_tiny_recipe(size), num_classes=5)
    model = detector.model
    assert [h for h, _ in model.feature_hws] == heights
    num_priors = detector.priors_P4.shape[0]
    for mode in (True, False):  # one return type in both modes
        cls_logits_BPK, box_deltas_BP4 = model.train(mode)(torch.randn(2, 3, size, size))
        assert cls_logits_BPK.shape == (2, num_priors, 6)
        assert box_deltas_BP4.shape == (2, num_priors, 4)


def test_tiny_is_well_under_two_million_parameters() -> None:
    for num_classes in (5, 20):
        model = build_detector(_tiny_recipe(256), num_classes=num_classes).model
        assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_tiny_width_multiplier_scales_channels() -> None:
    narrow = tiny(options(size_hw=(256, 256), width=0.5))
    wide = tiny(options(size_hw=(256, 256), width=1.0))
    assert narrow.body.out_channels == 64 and wide.body.out_channels == 128
    assert tiny(options(extra_levels=2)).extras.__len__() == 2


def test_tiny_has_no_pretrained_weights() -> None:
    with pytest.raises(ModelError, match="no pretrained weights"):
        tiny(options(backbone_weights="imagenet"))


def test_tiny_rejects_odd_input_sizes_naming_the_key() -> None:
    with pytest.raises(
        RecipeError, match=r"model.size_hw 301x300: .* divisible by 2; use e.g. \[302, 300\]"
    ):
        build_detector(_tiny_recipe(300, size_hw=[301, 300]), num_classes=5)


def test_space_to_depth_conv_equals_a_six_by_six_stride_four_convolution() -> None:
    # Unshuffle by 2 then a 3x3/2 conv (padding 1) reads the same pixels as a 6x6/4 conv with
    # padding 2 whose kernel is the 3x3 kernel's 4 channel groups laid back into 2x2 pixel blocks.
    torch.manual_seed(0)
    layer = SpaceToDepthConv(3, 8, stride=4).eval()
    images = torch.randn(2, 3, 32, 40)
    ours = layer.conv.conv(layer.unshuffle(images))
    w = layer.conv.conv.weight.detach()  # [8, 12, 3, 3]; unshuffle channel = c * 4 + dy * 2 + dx
    big = w.view(8, 3, 2, 2, 3, 3).permute(0, 1, 4, 2, 5, 3).reshape(8, 3, 6, 6)
    reference = torch.nn.functional.conv2d(images, big, stride=4, padding=2)
    assert ours.shape == (2, 8, 8, 10)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="stride 2 or 4"):
        SpaceToDepthConv(3, 8, stride=8)
