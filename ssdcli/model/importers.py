"""Foreign SSD weights -> our parameter names, class layout and matching recipe settings.

Two foreign layouts are understood, both plain state dicts of tensors:

* torchvision's ``ssd300_vgg16`` and ``ssdlite320_mobilenet_v3_large`` (``backbone.features.*``,
  ``backbone.extra.*``, ``head.classification_head.module_list.*``, ...). Its heads flatten
  ``(B, A*K, H, W) -> (B, H*W*A, K)`` with channel ``a*K + k``, the same prior order and channel
  layout as ours, so head tensors copy unchanged. Its 91-class COCO layout (index = COCO category
  id, with "N/A" gaps) becomes background + 80 contiguous classes by selecting class rows of
  the last class-head convolution for every anchor; ``category_ids`` keep the COCO ids.
* ssd.pytorch's SSD300 (``vgg.N``, ``L2Norm.weight``, ``extras.N``, ``loc.N``, ``conf.N``), whose
  ``vgg`` list indices are torchvision's ``vgg16().features`` indices up to conv5_3, then
  pool5 = 30, fc6 = 31, fc7 = 33; its extras list alternates 1x1 reduce / 3x3 convolutions.

Every tensor must be mapped (an unknown key is an error) and, when loading, every parameter of
our network must be provided. The priors and input normalisation the weights were trained with
come as recipe overrides (dotted keys for ``config.override_recipe``), so that an imported
model detects exactly as the original. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdcli.errors import CheckpointError

__all__ = [
    "FOREIGN_FORMATS",
    "TORCHVISION_ARCHS",
    "VOC_CLASSES",
    "ImportedWeights",
    "detect_format",
    "import_ssd_pytorch",
    "import_torchvision",
    "import_weights",
    "ssd_pytorch_recipe_overrides",
    "torchvision_arch",
    "torchvision_recipe_overrides",
]

FOREIGN_FORMATS = ("torchvision", "ssd_pytorch")
TORCHVISION_ARCHS = ("ssd300_vgg16", "ssdlite320_mobilenet_v3_large")

# ssd.pytorch's VOC class order (label i + 1 in its 21-way classifier).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

_SSD300_ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
_SSD300_STEPS = [8, 16, 32, 64, 100, 300]
# torchvision ssd300_vgg16: image_mean (0-1 units) with image_std 1/255, i.e. only the mean
# is removed, in 0-255 units.
_TV_VGG_MEAN_01 = (0.48235, 0.45882, 0.40784)


@dataclass
class ImportedWeights:
    """Foreign weights converted to our layout.

    Attributes:
        format: ``"torchvision"`` or ``"ssd_pytorch"``.
        arch: ``"ssd300_vgg16"`` or ``"ssdlite320_mobilenet_v3_large"``.
        state_dict: tensors under our parameter names, class head in our class layout.
        class_names: foreground names in our label order (``class_<i>`` where unknown).
        category_ids: COCO category id per label (torchvision COCO layout), else ``None``.
        recipe_overrides: dotted recipe keys -> values that rebuild the same network, priors and
            input normalisation (``config.override_recipe``).
        notes: what the conversion changed, for the one-line report.
    """

    format: str
    arch: str
    state_dict: dict[str, Tensor]
    class_names: list[str]
    category_ids: list[int] | None
    recipe_overrides: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``module.`` prefix that DataParallel adds to every key."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module.") :]: value for key, value in state.items()}
    return dict(state)


def detect_format(state: Mapping[str, Any]) -> str:
    """``"ssdcli"``, ``"torchvision"`` or ``"ssd_pytorch"`` from the keys of a loaded file.

    Args:
        state: what ``torch.load`` returned (an ssdcli payload or a state dict).

    Raises:
        CheckpointError: none of the known layouts.
    """
    if "format_version" in state:
        return "ssdcli"
    keys = list(_strip_prefix(state))
    if any(k.startswith("head.classification_head.") for k in keys):
        return "torchvision"
    if any(k.startswith("vgg.") for k in keys) and any(k.startswith("conf.") for k in keys):
        return "ssd_pytorch"
    if any(k.startswith("cls_head.") for k in keys):
        return "ssdcli"
    raise CheckpointError(
        f"model.init: unrecognised weights layout (first keys: {keys[:4]}); expected an ssdcli "
        "checkpoint, a torchvision ssd300_vgg16 / ssdlite320_mobilenet_v3_large state dict or "
        "an ssd.pytorch SSD300 checkpoint"
    )


def torchvision_arch(state: Mapping[str, Tensor]) -> str:
    """Which torchvision SSD a state dict belongs to (``TORCHVISION_ARCHS``)."""
    if "backbone.scale_weight" in state:
        return "ssd300_vgg16"
    if "backbone.features.0.0.0.weight" in state:
        return "ssdlite320_mobilenet_v3_large"
    raise CheckpointError(
        "model.init: torchvision state dict of an unsupported model; supported: "
        + ", ".join(TORCHVISION_ARCHS)
    )


def torchvision_recipe_overrides(arch: str, postprocess: bool = False) -> dict[str, Any]:
    """Recipe values that reproduce torchvision's network, priors and input normalisation.

    Args:
        arch: one of :data:`TORCHVISION_ARCHS`.
        postprocess: also set torchvision's score threshold, NMS IoU and top-k values.

    Returns:
        Dotted keys -> values, for ``config.override_recipe``.
    """
    if arch == "ssd300_vgg16":
        # torchvision: x01 = px / 255; (x01 - m) / (1 / 255) == (px - 255 m) / 1.
        values: dict[str, Any] = {
            "model.backbone": "vgg16",
            "model.size_hw": [300, 300],
            "model.input.mean": [m * 255.0 for m in _TV_VGG_MEAN_01],
            "model.input.std": [1.0, 1.0, 1.0],
            "priors.scales": [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
            "priors.steps": list(_SSD300_STEPS),
            "priors.aspect_ratios": [list(r) for r in _SSD300_ASPECT_RATIOS],
        }
        post = {"score_threshold": 0.01, "nms_iou": 0.45, "max_detections": 200}
        post["pre_nms_top_k"] = 400
    elif arch == "ssdlite320_mobilenet_v3_large":
        # DefaultBoxGenerator(min_ratio=0.2, max_ratio=0.95): linear scales, then 1.0.
        levels = 6
        scales = [0.2 + (0.95 - 0.2) * k / (levels - 1.0) for k in range(levels)] + [1.0]
        values = {
            "model.backbone": "mobilenet_v3_large",
            "model.size_hw": [320, 320],
            "model.width": 1.0,
            "model.input.mean": [127.5, 127.5, 127.5],
            "model.input.std": [127.5, 127.5, 127.5],
            "priors.scales": scales,
            "priors.steps": None,
            "priors.aspect_ratios": [[2, 3] for _ in range(levels)],
        }
        post = {"score_threshold": 0.001, "nms_iou": 0.55, "max_detections": 300}
        post["pre_nms_top_k"] = 300
    else:
        raise CheckpointError(f"unknown torchvision SSD {arch!r}; one of {TORCHVISION_ARCHS}")
    values.update(_common_overrides())
    values["model.input.channel_order"] = "rgb"
    values["priors.min_sizes"] = values["priors.max_sizes"] = None  # sizes are scales here
    # torchvision clamps prior sizes, never centres (SSD300's step-32 centres reach 1.013).
    values["priors.clip"] = "wh"
    if postprocess:
        values.update({f"postprocess.{key}": value for key, value in post.items()})
    return values


def ssd_pytorch_recipe_overrides() -> dict[str, Any]:
    """Recipe values of ssd.pytorch's VOC SSD300: BGR, mean (104, 117, 123), no scaling."""
    return {
        "model.backbone": "vgg16",
        "model.size_hw": [300, 300],
        "model.input.channel_order": "bgr",
        "model.input.mean": [104.0, 117.0, 123.0],
        "model.input.std": [1.0, 1.0, 1.0],
        "priors.min_sizes": [30.0, 60.0, 111.0, 162.0, 213.0, 264.0],
        "priors.max_sizes": [60.0, 111.0, 162.0, 213.0, 264.0, 315.0],
        "priors.scales": None,
        "priors.steps": list(_SSD300_STEPS),
        "priors.aspect_ratios": [list(r) for r in _SSD300_ASPECT_RATIOS],
        **_common_overrides(),
        "priors.clip": True,  # PriorBox clamps all four cxcywh values
    }


def _common_overrides() -> dict[str, Any]:
    # The imported file provides every weight: no backbone download, default extras, clipping.
    return {
        "model.extra_levels": None,
        "model.backbone_weights": None,
        "priors.variances": [0.1, 0.2],
    }


def _vgg_layer_names() -> list[str]:
    """Our VGG16 layer names in ssd.pytorch ``vgg`` list order (built on the meta device)."""
    from ssdcli.model.vgg import VGG16Backbone

    with torch.device("meta"):
        names = VGG16Backbone().layer_names()
    return [f"backbone.{name}" for name in names]


def _rename(state: Mapping[str, Tensor], rules: list[tuple[str, Callable]], where: str) -> dict:
    """Apply the first matching ``(regex, m -> new key)`` rule to every key; all must match."""
    compiled = [(re.compile(pattern), make) for pattern, make in rules]
    out: dict[str, Tensor] = {}
    unmapped = []
    for key, tensor in state.items():
        for pattern, make in compiled:
            match = pattern.fullmatch(key)
            if match:
                out[make(match)] = tensor
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise CheckpointError(
            f"model.init: {len(unmapped)} tensors of the {where} file have no place in the "
            f"network (e.g. {unmapped[:3]}); the file is not the model it looks like"
        )
    return out


_TV_HEADS = {"classification": "cls_head", "regression": "box_head"}
_TV_HEAD = r"head\.(classification|regression)_head\.module_list\.(\d+)"
_TV_EXTRA_PARTS = {"0": "reduce", "1": "depthwise", "2": "project"}
_TV_CONV_BN = {"0": "conv", "1": "bn"}


def _torchvision_rules(arch: str) -> list[tuple[str, Callable]]:
    """``(regex, match -> our key)`` pairs for a torchvision SSD state dict."""
    if arch == "ssd300_vgg16":
        vgg = _vgg_layer_names()

        def vgg_layer(offset: int) -> Callable:
            return lambda m: f"{vgg[offset + int(m[1])]}.{m[2]}"

        def extra(m: re.Match) -> str:
            return f"extras.{int(m[1]) - 1}.{'reduce' if m[2] == '0' else 'conv'}.{m[3]}"

        # tv extra.0 = vgg features[23:30] (pool4 .. relu5_3) + fc (pool5, fc6, relu, fc7, relu),
        # i.e. ssd.pytorch's vgg indices 23.. and 30..
        return [
            (r"backbone\.features\.(\d+)\.(weight|bias)", vgg_layer(0)),
            (r"backbone\.scale_weight", lambda m: "backbone.l2norm.weight"),
            (r"backbone\.extra\.0\.7\.(\d)\.(weight|bias)", vgg_layer(30)),
            (r"backbone\.extra\.0\.(\d)\.(weight|bias)", vgg_layer(23)),
            (r"backbone\.extra\.(\d+)\.([02])\.(weight|bias)", extra),
            (_TV_HEAD + r"\.(weight|bias)", lambda m: f"{_TV_HEADS[m[1]]}.{m[2]}.{m[3]}"),
        ]

    def lite_extra(m: re.Match) -> str:
        return f"extras.{m[1]}.{_TV_EXTRA_PARTS[m[2]]}.{_TV_CONV_BN[m[3]]}.{m[4]}"

    def head_depthwise(m: re.Match) -> str:
        return f"{_TV_HEADS[m[1]]}.{m[2]}.depthwise.{_TV_CONV_BN[m[3]]}.{m[4]}"

    return [
        (r"backbone\.features\.0\.(.+)", lambda m: f"backbone.to_c4.{m[1]}"),
        (r"backbone\.features\.1\.(.+)", lambda m: f"backbone.to_c5.{m[1]}"),
        (r"backbone\.extra\.(\d+)\.([012])\.([01])\.(.+)", lite_extra),
        (_TV_HEAD + r"\.0\.([01])\.(.+)", head_depthwise),
        (_TV_HEAD + r"\.1\.(weight|bias)", lambda m: f"{_TV_HEADS[m[1]]}.{m[2]}.project.{m[3]}"),
    ]


def _select_classes(tensor: Tensor, num_k: int, keep: list[int]) -> Tensor:
    """Keep class rows ``keep`` of every anchor of a class-head output layer (``a*K + k`` rows)."""
    anchors = tensor.shape[0] // num_k
    per_anchor = tensor.reshape(anchors, num_k, *tensor.shape[1:])
    return per_anchor[:, keep].reshape(anchors * len(keep), *tensor.shape[1:]).clone()


def _class_output_keys(state: Mapping[str, Tensor]) -> list[str]:
    """Keys of the class head's last layer (the one whose rows are anchors x classes)."""
    return [k for k in state if re.fullmatch(r"cls_head\.\d+\.(project\.)?(weight|bias)", k)]


def _num_classes_k(state: Mapping[str, Tensor], anchors_level0: int) -> int:
    rows = state[
        "cls_head.0.weight" if "cls_head.0.weight" in state else "cls_head.0.project.weight"
    ]
    return rows.shape[0] // anchors_level0


def import_torchvision(
    state: Mapping[str, Tensor], coco_to_contiguous: bool = True
) -> ImportedWeights:
    """Convert a torchvision SSD state dict.

    Args:
        state: ``ssd300_vgg16`` or ``ssdlite320_mobilenet_v3_large`` ``state_dict()``.
        coco_to_contiguous: with 91 classes (torchvision's COCO layout), keep background + the 80
            real COCO classes in id order and drop the "N/A" rows.

    Returns:
        :class:`ImportedWeights` (class names from torchvision's COCO metadata when 91 classes).
    """
    state = _strip_prefix(state)
    arch = torchvision_arch(state)
    ours = _rename(state, _torchvision_rules(arch), "torchvision")
    anchors_level0 = 4 if arch == "ssd300_vgg16" else 6
    num_k = _num_classes_k(ours, anchors_level0)
    notes = [f"torchvision {arch}"]
    category_ids = None
    if num_k == 91 and coco_to_contiguous:
        from torchvision.models.detection import SSD300_VGG16_Weights

        categories = SSD300_VGG16_Weights.COCO_V1.meta["categories"]
        category_ids = [i for i, name in enumerate(categories) if i > 0 and name != "N/A"]
        class_names = [categories[i] for i in category_ids]
        for key in _class_output_keys(ours):
            ours[key] = _select_classes(ours[key], num_k, [0, *category_ids])
        notes.append("COCO 91-slot classes -> 80 contiguous (N/A slots dropped)")
    else:
        class_names = [f"class_{i}" for i in range(1, num_k)]
    return ImportedWeights(
        "torchvision",
        arch,
        ours,
        class_names,
        category_ids,
        torchvision_recipe_overrides(arch),
        notes,
    )


def torchvision_key_map(state: Mapping[str, Tensor]) -> dict[str, str]:
    """Where each tensor of a torchvision SSD state dict lives in ours: ``{tv key: our key}``.

    The inverse direction of :func:`import_torchvision` (the same renaming rules, no class
    re-ordering), to load an ssdcli network's weights into torchvision's model.

    Raises:
        CheckpointError: an unsupported model, or a tensor without a place in ours.
    """
    state = _strip_prefix(state)
    rules = [(re.compile(p), make) for p, make in _torchvision_rules(torchvision_arch(state))]
    mapping: dict[str, str] = {}
    for key in state:
        for pattern, make in rules:
            match = pattern.fullmatch(key)
            if match:
                mapping[key] = make(match)
                break
        else:
            raise CheckpointError(f"torchvision tensor {key!r} has no place in the ssdcli network")
    return mapping


def import_ssd_pytorch(state: Mapping[str, Tensor]) -> ImportedWeights:
    """Convert an ssd.pytorch SSD300 state dict (keys vgg, L2Norm, extras, loc, conf).

    Returns:
        :class:`ImportedWeights`; with 21 classes the names are VOC's in ssd.pytorch's order.
    """
    state = _strip_prefix(state)
    vgg = _vgg_layer_names()
    rules: list[tuple[str, Callable]] = [
        (r"vgg\.(\d+)\.(weight|bias)", lambda m: f"{vgg[int(m[1])]}.{m[2]}"),
        (r"L2Norm\.weight", lambda m: "backbone.l2norm.weight"),
        (
            r"extras\.(\d+)\.(weight|bias)",
            lambda m: (
                f"extras.{int(m[1]) // 2}.{'reduce' if int(m[1]) % 2 == 0 else 'conv'}.{m[2]}"
            ),
        ),
        (r"loc\.(\d+)\.(weight|bias)", lambda m: f"box_head.{m[1]}.{m[2]}"),
        (r"conf\.(\d+)\.(weight|bias)", lambda m: f"cls_head.{m[1]}.{m[2]}"),
    ]
    ours = _rename(state, rules, "ssd.pytorch")
    num_k = _num_classes_k(ours, anchors_level0=4)
    if num_k == len(VOC_CLASSES) + 1:
        class_names = list(VOC_CLASSES)
    else:
        class_names = [f"class_{i}" for i in range(1, num_k)]
    notes = ["ssd.pytorch SSD300 (BGR input, mean 104/117/123)"]
    return ImportedWeights(
        "ssd_pytorch",
        "ssd300_vgg16",
        ours,
        class_names,
        None,
        ssd_pytorch_recipe_overrides(),
        notes,
    )


def import_weights(state: Mapping[str, Tensor], fmt: str) -> ImportedWeights:
    """Convert a foreign state dict of format ``fmt`` (one of :data:`FOREIGN_FORMATS`)."""
    if fmt == "torchvision":
        return import_torchvision(state)
    if fmt == "ssd_pytorch":
        return import_ssd_pytorch(state)
    raise CheckpointError(f"unknown foreign weights format {fmt!r}; one of {FOREIGN_FORMATS}")
