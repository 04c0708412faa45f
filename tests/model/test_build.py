"""build_detector: backbone names and plug-ins, measured maps, the prior-count check, freezing."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

import ssdcli.model.build as build_module
from ssdcli.config import Recipe
from ssdcli.errors import ModelError, RecipeError
from ssdcli.model import BACKBONES, Backbone, build_detector, freeze, resolve_backbone

PLUGIN_MODULE = textwrap.dedent(
    """
    from torch import nn

    from ssdcli.model import Backbone


    class TwoMaps(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=8, padding=1)
            self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)

        def forward(self, images):
            s8 = self.stem(images)
            return [s8, self.down(s8)]


    def bare(options):
        return TwoMaps()


    def with_extras(options):
        extras = nn.ModuleList([nn.Conv2d(16, 24, 3, stride=2, padding=1)])
        return Backbone(TwoMaps(), extras, head_style="separable")


    NOT_CALLABLE = 3
    """
)


def _recipe(backbone: str, levels: int, size: int = 128, **model) -> Recipe:
    return Recipe.model_validate(
        {
            "model": {"backbone": backbone, "size_hw": [size, size], **model},
            "priors": {
                "scales": [0.1 + 0.15 * k for k in range(levels + 1)],
                "aspect_ratios": [[2]] * levels,
            },
        }
    )


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    (tmp_path / "my_backbones.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_backbones"


def test_builtins_are_a_plain_dict() -> None:
    assert set(BACKBONES) == {
        "vgg16", "mobilenet_v3_large", "mobilenet_v2", "tiny",
        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
    }  # fmt: skip
    assert resolve_backbone("tiny") is BACKBONES["tiny"]


def test_unknown_name_lists_builtins_and_close_match() -> None:
    with pytest.raises(ModelError) as error:
        resolve_backbone("mobilenet_v3")
    message = str(error.value)
    assert "did you mean 'mobilenet_v3_large'?" in message
    assert "vgg16, mobilenet_v3_large, mobilenet_v2, tiny" in message
    assert "package.module:factory" in message


def test_plugin_errors(plugin) -> None:
    with pytest.raises(ModelError, match="cannot import 'no_such_package_xyz'"):
        resolve_backbone("no_such_package_xyz:factory")
    with pytest.raises(ModelError, match="no callable 'NOT_CALLABLE'"):
        resolve_backbone(f"{plugin}:NOT_CALLABLE")


def test_plugin_bare_module_measured_with_generic_extras(plugin) -> None:
    detector = build_detector(_recipe(f"{plugin}:bare", levels=4, extra_levels=2), num_classes=3)
    model = detector.model
    assert model.feature_hws == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert [m.shape[1] for m in model.features(torch.zeros(1, 3, 128, 128))] == [8, 16, 256, 256]
    assert model.anchors_per_level == [4, 4, 4, 4]
    cls_logits_BPK, box_deltas_BP4 = model(torch.zeros(2, 3, 128, 128))
    assert cls_logits_BPK.shape == (2, (256 + 64 + 16 + 4) * 4, 4)
    assert box_deltas_BP4.shape[1] == detector.priors_P4.shape[0]


def test_plugin_backbone_dataclass_keeps_its_extras_and_head_style(plugin) -> None:
    detector = build_detector(_recipe(f"{plugin}:with_extras", levels=3), num_classes=1)
    model = detector.model
    assert model.feature_hws == [(16, 16), (8, 8), (4, 4)]
    assert isinstance(model.extras[0], nn.Conv2d)
    assert isinstance(model.box_head[0].depthwise.bn, nn.BatchNorm2d)
    assert model(torch.zeros(1, 3, 128, 128))[0].shape == (1, (256 + 64 + 16) * 4, 2)


def test_aspect_ratio_count_differing_from_levels_is_a_recipe_error(plugin) -> None:
    recipe = _recipe(f"{plugin}:bare", levels=2).model_copy(
        update={"priors": _recipe("tiny", levels=3).priors}
    )
    with pytest.raises(RecipeError, match="3 entries but the model has 2 feature maps"):
        build_detector(recipe, num_classes=1)


def test_head_and_prior_count_mismatch_is_a_model_error(plugin, monkeypatch) -> None:
    # Simulate a head sized by a rule that disagrees with the prior generator.
    monkeypatch.setattr(build_module, "anchors_per_cell", lambda ratios, has_max: 5)
    with pytest.raises(
        ModelError, match="heads predict 1600 priors but the prior generator made 1280"
    ):
        build_detector(_recipe(f"{plugin}:bare", levels=2), num_classes=1)


def test_too_small_input_names_the_fix() -> None:
    with pytest.raises(ModelError, match="increase model.size_hw or lower model.extra_levels"):
        build_detector(_recipe("vgg16", levels=6, size=100), num_classes=1)


def test_zero_classes_is_refused(plugin) -> None:
    with pytest.raises(ModelError, match="at least one class"):
        build_detector(_recipe(f"{plugin}:bare", levels=2), num_classes=0)


def test_freeze_from_recipe_and_batch_norm_stays_in_eval() -> None:
    recipe = _recipe("tiny", levels=6, size=256, freeze=["backbone", "extras"])
    model = build_detector(recipe, num_classes=5).model
    assert model.frozen_parts == ("backbone", "extras")
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.extras.parameters())
    assert all(p.requires_grad for p in model.cls_head.parameters())
    model.train()
    assert model.training and model.cls_head.training
    assert not model.backbone.to_s8.s2d1.conv.bn.training
    assert not model.extras[0].reduce.bn.training


def test_freeze_unknown_part_suggests() -> None:
    model = build_detector(_recipe("tiny", levels=6, size=256), num_classes=5).model
    with pytest.raises(ModelError, match="did you mean 'box_head'"):
        freeze(model, ["box_heads"])


def test_backbone_dataclass_default_extras_are_empty() -> None:
    assert len(Backbone(nn.Identity()).extras) == 0
