"""Fine-tuning: starting weights with another class count keep everything but the class head."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import ssdlite320_mobilenet_v3_large

from ssdcli.checkpoint.file import make_payload, save_checkpoint
from ssdcli.checkpoint.starting_weights import initialize_from, resolve_init_recipe
from ssdcli.config import Recipe, load_recipe, override_recipe, recipe_to_dict
from ssdcli.errors import CheckpointError, RecipeError
from ssdcli.model import build_detector
from ssdcli.model.importers import VOC_CLASSES

TINY = {"model.backbone": "tiny", "model.size_hw": [160, 160]}
NEW_CLASSES = ["circle", "square", "triangle", "star"]


def _randomise(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def voc_checkpoint(tmp_path_factory):
    """A tiny-backbone checkpoint for the 20 VOC classes (21 outputs with background)."""
    recipe = override_recipe(Recipe(), TINY)
    detector = build_detector(recipe, num_classes=len(VOC_CLASSES))
    _randomise(detector.model, seed=0)
    path = tmp_path_factory.mktemp("ckpt") / "voc.pt"
    payload = make_payload(detector.model.state_dict(), recipe_to_dict(recipe), list(VOC_CLASSES))
    save_checkpoint(path, payload)
    return path, detector.model.state_dict()


def test_21_class_checkpoint_into_4_class_recipe(voc_checkpoint):
    path, saved = voc_checkpoint
    recipe = resolve_init_recipe(
        override_recipe(Recipe(), {**TINY, "model.init": str(path), "model.freeze": ["backbone"]})
    )
    detector = build_detector(recipe, num_classes=len(NEW_CLASSES))
    fresh = {k: v.clone() for k, v in detector.model.state_dict().items()}
    lines: list[str] = []
    line = initialize_from(detector, recipe, NEW_CLASSES, log=lines.append)

    assert lines == [line] and "\n" not in line
    assert "class head re-initialised for 4 classes (weights have 20 classes)" in line
    assert line.endswith(", ".join(f"cls_head.{i}" for i in range(6)))
    state = detector.model.state_dict()
    assert state["cls_head.0.weight"].shape[0] == 5 * detector.model.anchors_per_level[0]
    for key, value in state.items():
        expected = fresh[key] if key.startswith("cls_head.") else saved[key]
        assert torch.equal(value, expected), key
    # model.freeze: [backbone] still holds after loading.
    assert not any(p.requires_grad for p in detector.model.backbone.parameters())
    assert all(p.requires_grad for p in detector.model.cls_head.parameters())


def test_same_classes_load_every_tensor_silently(voc_checkpoint):
    path, saved = voc_checkpoint
    recipe = override_recipe(Recipe(), {**TINY, "model.init": str(path)})
    detector = build_detector(recipe, num_classes=len(VOC_CLASSES))
    line = initialize_from(detector, recipe, list(VOC_CLASSES), log=lambda _: None)
    assert "re-initialised" not in line
    assert all(torch.equal(v, saved[k]) for k, v in detector.model.state_dict().items())


def test_other_network_is_a_clear_error(voc_checkpoint):
    path, _ = voc_checkpoint
    recipe = override_recipe(Recipe(), {**TINY, "model.init": str(path), "model.width": 0.5})
    detector = build_detector(recipe, num_classes=len(VOC_CLASSES))
    with pytest.raises(CheckpointError, match="does not fit the recipe's network"):
        initialize_from(detector, recipe, list(VOC_CLASSES), log=lambda _: None)


def test_torchvision_coco_weights_into_4_classes(tmp_path):
    with torch.device("meta"):
        tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    tv = tv.to_empty(device="cpu")
    _randomise(tv, seed=1)
    path = tmp_path / "ssdlite_coco.pth"
    torch.save(tv.state_dict(), path)

    user = override_recipe(
        Recipe(), {**TINY, "model.init": str(path), "data.class_names": NEW_CLASSES}
    )
    with pytest.raises(RecipeError, match="resolve_init_recipe"):
        initialize_from(build_detector(user, 4), user, NEW_CLASSES)

    # A VOC recipe (ssd.pytorch prior sizes, Caffe input) takes torchvision's priors and input.
    voc = load_recipe("voc300", [f"model.init={path}", f"data.class_names={NEW_CLASSES}"])
    recipe = resolve_init_recipe(voc)
    assert recipe.priors.min_sizes is None and recipe.priors.scales[0] == 0.2
    assert recipe.model.backbone == "mobilenet_v3_large"
    assert recipe.model.size_hw == (320, 320)
    assert recipe.priors.clip == "wh" and recipe.priors.steps is None
    assert recipe.model.input.mean == (127.5, 127.5, 127.5)
    assert recipe.data.class_names == NEW_CLASSES  # the rest of the recipe is the user's
    detector = build_detector(recipe, num_classes=4)
    line = initialize_from(detector, recipe, NEW_CLASSES, log=lambda _: None)
    assert "torchvision ssdlite320_mobilenet_v3_large" in line
    assert "(weights have 80 classes)" in line
    assert line.endswith(", ".join(f"cls_head.{i}.project" for i in range(6)))
    tv_state = tv.state_dict()
    ours = detector.model.state_dict()
    assert torch.equal(
        ours["box_head.5.project.bias"], tv_state["head.regression_head.module_list.5.1.bias"]
    )
    assert torch.equal(
        ours["cls_head.2.depthwise.bn.running_var"],
        tv_state["head.classification_head.module_list.2.0.1.running_var"],
    )


def test_import_to_checkpoint_gives_a_self_describing_file(tmp_path):
    from ssdcli.checkpoint.file import load_detector
    from ssdcli.checkpoint.starting_weights import import_to_checkpoint

    with torch.device("meta"):
        tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    tv = tv.to_empty(device="cpu")
    _randomise(tv, seed=2)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    path = import_to_checkpoint(tmp_path / "tv.pth", tmp_path / "coco.pt")
    loaded = load_detector(path)
    assert loaded.class_names[0] == "person" and len(loaded.class_names) == 80
    assert loaded.category_ids[-1] == 90
    assert loaded.recipe.postprocess.nms_iou == 0.55  # torchvision's SSDLite settings
    assert loaded.recipe.postprocess.max_detections == 300
    assert torch.equal(
        loaded.detector.model.state_dict()["extras.3.project.bn.weight"],
        tv.state_dict()["backbone.extra.3.2.1.weight"],
    )
