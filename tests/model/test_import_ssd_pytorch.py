"""Importing an ssd.pytorch SSD300 checkpoint: every tensor lands where its layout says.

The state dict is built here from ssd.pytorch's layout (its ``vgg`` list with ReLU and pooling
entries, the ``extras`` list, ``loc``/``conf`` per source, ``L2Norm``), filled with random
values, imported, and compared tensor by tensor against a hand-written table of our names. A
functional re-implementation of ssd.pytorch's forward pass checks the outputs too.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssdcli.config import Recipe, override_recipe
from ssdcli.model import build_detector
from ssdcli.model.importers import VOC_CLASSES, detect_format, import_ssd_pytorch

NUM_K = 21  # VOC: background + 20
# ssd.pytorch base['300'] ('M' max pool, 'C' ceil-mode max pool), then pool5, conv6, conv7.
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512]
# extras['300'] as (in, out, kernel, stride, padding): 1x1 and 3x3 alternate.
EXTRAS = [
    (1024, 256, 1, 1, 0), (256, 512, 3, 2, 1), (512, 128, 1, 1, 0), (128, 256, 3, 2, 1),
    (256, 128, 1, 1, 0), (128, 256, 3, 1, 0), (256, 128, 1, 1, 0), (128, 256, 3, 1, 0),
]  # fmt: skip
SOURCE_CHANNELS = [512, 1024, 512, 256, 256, 256]
MBOX = [4, 6, 6, 6, 4, 4]

# Our parameter name for every conv of ssd.pytorch's lists, written out by hand.
EXPECTED = {
    "vgg.0": "backbone.to_conv4_3.conv1_1", "vgg.2": "backbone.to_conv4_3.conv1_2",
    "vgg.5": "backbone.to_conv4_3.conv2_1", "vgg.7": "backbone.to_conv4_3.conv2_2",
    "vgg.10": "backbone.to_conv4_3.conv3_1", "vgg.12": "backbone.to_conv4_3.conv3_2",
    "vgg.14": "backbone.to_conv4_3.conv3_3", "vgg.17": "backbone.to_conv4_3.conv4_1",
    "vgg.19": "backbone.to_conv4_3.conv4_2", "vgg.21": "backbone.to_conv4_3.conv4_3",
    "vgg.24": "backbone.to_fc7.conv5_1", "vgg.26": "backbone.to_fc7.conv5_2",
    "vgg.28": "backbone.to_fc7.conv5_3", "vgg.31": "backbone.to_fc7.fc6",
    "vgg.33": "backbone.to_fc7.fc7",
    "extras.0": "extras.0.reduce", "extras.1": "extras.0.conv",
    "extras.2": "extras.1.reduce", "extras.3": "extras.1.conv",
    "extras.4": "extras.2.reduce", "extras.5": "extras.2.conv",
    "extras.6": "extras.3.reduce", "extras.7": "extras.3.conv",
    **{f"loc.{i}": f"box_head.{i}" for i in range(6)},
    **{f"conf.{i}": f"cls_head.{i}" for i in range(6)},
}  # fmt: skip


def _vgg_layers() -> list[tuple]:
    """ssd.pytorch's ``vgg`` list as tuples.

    ("conv", in, out, kernel, padding, dilation); ("pool", kernel, stride, padding, ceil);
    ("relu",).
    """
    layers: list[tuple] = []
    channels = 3
    for v in VGG_CFG:
        if v in ("M", "C"):
            layers.append(("pool", 2, 2, 0, v == "C"))
        else:
            layers += [("conv", channels, v, 3, 1, 1), ("relu",)]
            channels = v
    layers += [("pool", 3, 1, 1, False), ("conv", 512, 1024, 3, 6, 6), ("relu",)]
    layers += [("conv", 1024, 1024, 1, 0, 1), ("relu",)]
    return layers


def _ssd_pytorch_state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def conv(prefix: str, c_in: int, c_out: int, k: int) -> dict[str, torch.Tensor]:
        std = (2.0 / (c_in * k * k)) ** 0.5
        return {
            f"{prefix}.weight": torch.randn(c_out, c_in, k, k, generator=gen) * std,
            f"{prefix}.bias": torch.randn(c_out, generator=gen) * 0.1,
        }

    state: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(_vgg_layers()):
        if layer[0] == "conv":
            state.update(conv(f"vgg.{i}", layer[1], layer[2], layer[3]))
    state["L2Norm.weight"] = 20.0 * (torch.rand(512, generator=gen) + 0.5)
    for i, (c_in, c_out, k, _, _) in enumerate(EXTRAS):
        state.update(conv(f"extras.{i}", c_in, c_out, k))
    for i, (channels, anchors) in enumerate(zip(SOURCE_CHANNELS, MBOX, strict=True)):
        state.update(conv(f"loc.{i}", channels, anchors * 4, 3))
        state.update(conv(f"conf.{i}", channels, anchors * NUM_K, 3))
    return state


def _ssd_pytorch_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> tuple:
    """ssd.pytorch ``SSD.forward`` in train phase: (loc [B, P, 4], conf [B, P, K])."""
    sources = []
    for i, layer in enumerate(_vgg_layers()):
        if layer[0] == "conv":
            x = F.conv2d(x, state[f"vgg.{i}.weight"], state[f"vgg.{i}.bias"], 1, layer[4], layer[5])
        elif layer[0] == "relu":
            x = F.relu(x)
        else:
            x = F.max_pool2d(x, layer[1], layer[2], layer[3], ceil_mode=layer[4])
        if i == 22:  # after conv4_3's ReLU: L2Norm (norm + eps 1e-10)
            norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
            sources.append(state["L2Norm.weight"].view(1, -1, 1, 1) * (x / norm))
    sources.append(x)
    for i, (_, _, _, stride, pad) in enumerate(EXTRAS):
        x = F.relu(F.conv2d(x, state[f"extras.{i}.weight"], state[f"extras.{i}.bias"], stride, pad))
        if i % 2 == 1:
            sources.append(x)
    loc, conf = [], []
    for i, source in enumerate(sources):
        loc_out = F.conv2d(source, state[f"loc.{i}.weight"], state[f"loc.{i}.bias"], padding=1)
        conf_out = F.conv2d(source, state[f"conf.{i}.weight"], state[f"conf.{i}.bias"], padding=1)
        loc.append(loc_out.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
        conf.append(conf_out.permute(0, 2, 3, 1).reshape(x.shape[0], -1, NUM_K))
    return torch.cat(loc, 1), torch.cat(conf, 1)


@pytest.fixture(scope="module")
def imported():
    state = _ssd_pytorch_state()
    result = import_ssd_pytorch({f"module.{k}": v for k, v in state.items()})  # DataParallel
    recipe = override_recipe(Recipe(), result.recipe_overrides)
    detector = build_detector(recipe, num_classes=len(result.class_names))
    detector.model.load_state_dict(result.state_dict, strict=True)
    return state, result, recipe, detector.model.eval(), detector


def test_format_is_recognised():
    state = {"vgg.0.weight": torch.zeros(1), "conf.0.weight": torch.zeros(1)}
    assert detect_format(state) == "ssd_pytorch"


def test_every_tensor_lands_where_the_layout_says(imported):
    state, result, _, model, _ = imported
    ours = model.state_dict()
    assert len(result.state_dict) == len(state) == len(ours)
    checked = 0
    for key, tensor in state.items():
        if key == "L2Norm.weight":
            assert torch.equal(ours["backbone.l2norm.weight"], tensor)
        else:
            prefix, param = key.rsplit(".", 1)
            assert torch.equal(ours[f"{EXPECTED[prefix]}.{param}"], tensor), key
        checked += 1
    assert checked == 2 * len(EXPECTED) + 1


def test_classes_priors_and_input_are_ssd_pytorch_voc(imported):
    _, result, recipe, _, detector = imported
    assert result.class_names == list(VOC_CLASSES) and result.class_names[0] == "aeroplane"
    assert recipe.model.input.channel_order == "bgr"
    assert recipe.model.input.mean == (104.0, 117.0, 123.0)
    assert recipe.model.input.std == (1.0, 1.0, 1.0)
    priors = detector.priors_P4
    assert priors.shape == (8732, 4)
    # PriorBox, level 0, cell (0, 0): min 30 px, then sqrt(30 * 60) px, then ratio 2.
    assert torch.allclose(priors[0], torch.tensor([4, 4, 30, 30]) / 300.0)
    assert torch.allclose(priors[1, 2:], torch.tensor([1800**0.5, 1800**0.5]) / 300.0)
    assert torch.allclose(priors[2, 2:], torch.tensor([30 * 2**0.5, 30 / 2**0.5]) / 300.0)
    # Level 2 (10x10, step 32): PriorBox clamps the last centre (9.5 * 32 / 300 > 1) to 1.
    level2_last_cell = 38 * 38 * 4 + 19 * 19 * 6 + 99 * 6
    assert priors[level2_last_cell, 0].item() == 1.0


def test_outputs_equal_ssd_pytorch_forward(imported):
    state, _, _, model, _ = imported
    images = torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(1)) * 50
    with torch.no_grad():
        loc, conf = _ssd_pytorch_forward(state, images)
        cls_logits_BPK, box_deltas_BP4 = model(images)
    assert conf.shape == cls_logits_BPK.shape == (1, 8732, NUM_K)
    assert torch.allclose(box_deltas_BP4, loc, atol=1e-4, rtol=1e-5)
    assert torch.allclose(cls_logits_BPK, conf, atol=1e-4, rtol=1e-5)
