"""Importing torchvision's SSD300-VGG16 and SSDLite320-MobileNetV3 state dicts reproduces them.

torchvision's models are built without weights, every parameter and buffer is then randomised
(batch-norm statistics included), and the state dict goes through the import. The same
normalised input goes to both networks: raw head outputs per prior, priors and final detections
must agree within 1e-4.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large
from torchvision.models.detection.image_list import ImageList

from ssdcli.boxes import BoxCoder
from ssdcli.checkpoint.file import read_weights_file
from ssdcli.config import Recipe, override_recipe
from ssdcli.data.pipeline.transforms import preprocess_image
from ssdcli.model import build_detector
from ssdcli.model.importers import detect_format, import_torchvision, torchvision_arch
from ssdcli.postprocess import PostProcessor, PostprocessSettings

TOL = 1e-4
BUILDERS = {
    "ssd300_vgg16": ssd300_vgg16,
    "ssdlite320_mobilenet_v3_large": ssdlite320_mobilenet_v3_large,
}


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere (He-normal scale: scores spread out without saturating)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif tensor.dim() == 1:  # batch-norm weights, the L2-norm scale
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                fan_in = tensor[0].numel()
                std = math.sqrt(2.0 / fan_in)
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * std)
        if hasattr(model, "backbone") and hasattr(model.backbone, "scale_weight"):
            model.backbone.scale_weight.mul_(20.0)


@pytest.fixture(scope="module", params=list(BUILDERS))
def pair(request, tmp_path_factory):
    """(torchvision model, imported weights, our detector) for one architecture, eval mode."""
    arch = request.param
    with torch.device("meta"):  # skip torchvision's own (slow) initialisation
        tv = BUILDERS[arch](weights=None, weights_backbone=None, num_classes=91)
    tv = tv.to_empty(device="cpu").eval()
    _randomise(tv, seed=len(arch))
    path = tmp_path_factory.mktemp("tv") / f"{arch}.pth"
    torch.save(tv.state_dict(), path)
    state = read_weights_file(path)
    assert detect_format(state) == "torchvision"
    assert torchvision_arch(state) == arch
    imported = import_torchvision(state)
    recipe = override_recipe(Recipe(), imported.recipe_overrides)
    detector = build_detector(recipe, num_classes=len(imported.class_names))
    detector.model.load_state_dict(imported.state_dict, strict=True)
    detector.model.eval()
    # One normalised input, run once through both networks.
    images = torch.randn(1, 3, *detector.size_hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = list(tv.backbone(images).values())
        head = tv.head(features)
        anchors = tv.anchor_generator(ImageList(images, [detector.size_hw]), features)
        ours = detector.model(images)
    return SimpleNamespace(
        tv=tv, imported=imported, detector=detector, recipe=recipe, head=head, anchors=anchors,
        cls_logits_BPK=ours[0], box_deltas_BP4=ours[1],
    )  # fmt: skip


def test_coco_layout_becomes_80_contiguous_classes(pair):
    imported = pair.imported
    assert len(imported.class_names) == 80
    assert imported.class_names[:3] == ["person", "bicycle", "car"]
    assert imported.class_names[-1] == "toothbrush"
    assert imported.category_ids[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]  # 12 is N/A
    assert imported.category_ids[-1] == 90


def test_priors_and_raw_outputs_match(pair):
    height, width = pair.detector.size_hw
    anchors = pair.anchors[0] / torch.tensor([width, height, width, height])
    anchors_cxcywh = torch.cat(
        ((anchors[:, :2] + anchors[:, 2:]) / 2, anchors[:, 2:] - anchors[:, :2]), 1
    )
    assert pair.detector.priors_P4.shape == anchors_cxcywh.shape
    assert torch.allclose(pair.detector.priors_P4, anchors_cxcywh, atol=1e-5)
    keep = [0, *pair.imported.category_ids]
    assert pair.cls_logits_BPK.shape == (1, anchors.shape[0], 81)
    assert torch.allclose(pair.cls_logits_BPK, pair.head["cls_logits"][..., keep], atol=TOL, rtol=0)
    assert torch.allclose(pair.box_deltas_BP4, pair.head["bbox_regression"], atol=TOL, rtol=0)


def test_detections_match(pair):
    tv, size_hw, post = pair.tv, pair.detector.size_hw, pair.recipe.postprocess
    # torchvision's softmax also spreads probability over the 11 "N/A" slots, which the 80-class
    # layout drops; with those logits at -inf both compute the same probabilities.
    head = {key: value.clone() for key, value in pair.head.items()}
    na_slots = [i for i in range(91) if i not in [0, *pair.imported.category_ids]]
    head["cls_logits"][..., na_slots] = -math.inf
    tv.score_thresh, tv.nms_thresh = 0.2, post.nms_iou
    tv.detections_per_img, tv.topk_candidates = post.max_detections, post.pre_nms_top_k
    expected = tv.postprocess_detections(head, pair.anchors, [size_hw])[0]
    ours = PostProcessor(
        pair.detector.priors_P4,
        BoxCoder(pair.recipe.priors.variances),
        replace(PostprocessSettings.from_mapping(post), score_threshold=0.2),
    )(pair.cls_logits_BPK, pair.box_deltas_BP4, [size_hw])[0]
    assert 20 <= len(ours) == len(expected["scores"])
    assert torch.allclose(ours.scores_D, expected["scores"], atol=TOL, rtol=0)
    assert torch.allclose(ours.boxes_D4, expected["boxes"], atol=TOL, rtol=0)
    ids = torch.tensor(pair.imported.category_ids)[ours.labels_D]
    assert torch.equal(ids, expected["labels"])


def test_recipe_preprocessing_equals_torchvision_normalisation(pair):
    size_hw, cfg = pair.detector.size_hw, pair.recipe.model.input
    image_rgb = np.random.default_rng(0).integers(0, 256, size=(*size_hw, 3), dtype=np.uint8)
    ours = preprocess_image(image_rgb, size_hw, cfg.mean, cfg.std, cfg.channel_order)
    image01 = torch.from_numpy(image_rgb).permute(2, 0, 1).float() / 255.0
    theirs = pair.tv.transform.normalize(image01)
    assert cfg.channel_order == "rgb"
    assert np.allclose(ours, theirs.numpy(), atol=TOL)


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v2"])
def test_backbone_weights_from_torchvision_classification_file(name, tmp_path):
    """model.backbone_weights: a local torchvision ImageNet state dict fills the backbone."""
    import torchvision

    with torch.device("meta"):
        classifier = getattr(torchvision.models, name)(weights=None)
    classifier = classifier.to_empty(device="cpu")
    _randomise(classifier, seed=3)
    path = tmp_path / f"{name}.pth"
    torch.save(classifier.state_dict(), path)
    overrides = {
        "model.backbone": name,
        "model.size_hw": [320, 320],
        "model.backbone_weights": str(path),
    }
    detector = build_detector(override_recipe(Recipe(), overrides), num_classes=3)
    ours = detector.model.backbone
    source = classifier.state_dict()
    stages = [*ours.to_c4.state_dict().items(), *ours.to_c5.state_dict().items()]
    assert len(stages) == len([k for k in source if k.startswith("features.")])
    first = ours.to_c4.state_dict()
    assert torch.equal(first["0.0.weight"], source["features.0.0.weight"])
    last = ours.to_c5.state_dict()
    last_key = list(last)[-2]  # the last batch norm's running_var
    assert torch.equal(
        last[last_key], source[f"features.{len(classifier.features) - 1}.1.running_var"]
    )
