"""A faster copy of a network for inference: folded batch norms, fused conv + activation, packed
weights and channels-last tensors.

Measured on the CPU by ``benchmarks/bench_infer.py``: channels-last memory alone is the largest
single gain (oneDNN convolutions then skip a layout reorder of every activation); on the CPU,
each convolution additionally runs as one oneDNN "convolution + activation" primitive with its
weights reordered once into oneDNN's blocked layout (otherwise reordered on every call), and
batch norms are folded into the preceding convolution. Outputs equal the eager network's within
float32 rounding (checked on a random input when the copy is made; any failure falls back to
channels-last only).

``optimize_for_inference(model, size_hw)`` returns a module with the same call signature:
``(images_BCHW) -> (cls_logits_BPK, box_deltas_BP4)``. It is for inference only (no gradients,
no ``state_dict`` round trip, CPU weights packed for the given device).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["FusedConv2d", "InferenceModel", "fold_batch_norms", "optimize_for_inference"]

# Activation module -> oneDNN post-op name and scalars.
_POST_OPS: dict[type, tuple[str, list[float]]] = {
    nn.ReLU: ("relu", []),
    nn.ReLU6: ("hardtanh", [0.0, 6.0]),
    nn.Hardswish: ("hardswish", []),
}


class FusedConv2d(nn.Module):
    """A convolution (batch norm folded in) with its activation, run as one oneDNN primitive.

    Args:
        conv: the convolution (zero padding, integer padding).
        bn: a batch norm in eval mode that follows it, folded into weight and bias; or None.
        activation: the following activation module (a key of the post-op table), or None.
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d | None,
        activation: nn.Module | None,
    ) -> None:
        super().__init__()
        weight, bias = _folded(conv, bn)
        self.attr, self.scalars = _POST_OPS[type(activation)] if activation else ("none", [])
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.bias = bias
        # The packed layout barely depends on the input size (measured): pack for a nominal one.
        nominal_size = [1, conv.in_channels, 32, 32]
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, nominal_size
        )

    def forward(self, x_BCHW: Tensor) -> Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x_BCHW, self.weight, self.bias, self.padding, self.stride, self.dilation,
            self.groups, self.attr, self.scalars, "",
        )  # fmt: skip


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[Tensor, Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (y = gamma (x - mu) / sigma + beta)."""
    weight = conv.weight.detach().clone()
    bias = (
        conv.bias.detach().clone() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    )
    if bn is None:
        return weight.contiguous(), bias
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    weight = weight * scale.view(-1, 1, 1, 1)
    bias = (bias - bn.running_mean) * scale + bn.bias.detach()
    return weight.contiguous(), bias.contiguous()


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """Fold every batch norm into the convolution before it, in place; returns ``module``.

    Works on any layout where a batch norm is the next convolution-or-batch-norm child after its
    convolution in the same parent (``nn.Sequential`` chains, and timm's blocks, whose
    ``BatchNormAct2d`` keeps its activation: the batch norm becomes that activation alone).
    Only valid while the batch norms are in eval mode (their running statistics are used);
    the result is for no-gradient use. Outputs equal the original's within float32 rounding.
    """
    for parent in list(module.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            conv = parent._modules[name]
            if not _fusable(conv):
                continue
            for later in names[i + 1 :]:
                bn = parent._modules[later]
                if isinstance(bn, nn.BatchNorm2d):
                    parent._modules[name] = _folded_conv(conv, bn)
                    parent._modules[later] = _activation_of(bn)
                    break
                if isinstance(bn, nn.Conv2d):  # the next convolution: no batch norm between
                    break
    return module


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``nn.Conv2d`` (with bias) computing ``bn(conv(x))`` in eval mode."""
    weight, bias = _folded(conv, bn)
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
    ).to(weight.device)
    with torch.no_grad():
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded.to(memory_format=torch.channels_last).requires_grad_(False)


def _activation_of(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a batch norm once folded: timm's ``BatchNormAct2d`` keeps drop + act."""
    act = getattr(bn, "act", None)
    drop = getattr(bn, "drop", None)
    kept = [m for m in (drop, act) if isinstance(m, nn.Module)]
    return nn.Sequential(*kept) if kept else nn.Identity()


def _fusable(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.weight.dtype == torch.float32
    )


def _chains(sequence: nn.Sequential) -> Iterator[tuple[str, list[str]]]:
    """``(conv name, [names of the batch norm / activation that follow])`` in a Sequential."""
    names = list(sequence._modules)
    for i, name in enumerate(names):
        if not _fusable(sequence._modules[name]):
            continue
        followers = []
        rest = names[i + 1 : i + 3]
        if rest and isinstance(sequence._modules[rest[0]], nn.BatchNorm2d):
            followers.append(rest.pop(0))
        if rest and type(sequence._modules[rest[0]]) in _POST_OPS:
            followers.append(rest[0])
        yield name, followers


def fuse_for_cpu(model: nn.Module) -> nn.Module:
    """Replace every float32 Conv2d (with its batch norm and activation, when a Sequential puts
    them right after it) by a :class:`FusedConv2d`, in place; returns ``model``.

    Each replacement is checked against the modules it replaces on a small random input.

    Raises:
        RuntimeError: a fused layer disagrees with the original (or the op is missing).
    """
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            for conv_name, followers in list(_chains(parent)):
                originals = [parent._modules[name] for name in (conv_name, *followers)]
                bn = next((m for m in originals if isinstance(m, nn.BatchNorm2d)), None)
                act = next((m for m in originals[1:] if type(m) in _POST_OPS), None)
                parent._modules[conv_name] = _checked(FusedConv2d(originals[0], bn, act), originals)
                for name in followers:
                    del parent._modules[name]
        # Convolutions elsewhere (heads, squeeze-excitation) get packed weights too.
        for name, child in list(parent._modules.items()):
            if _fusable(child):
                parent._modules[name] = _checked(FusedConv2d(child, None, None), [child])
    return model


def _checked(fused: FusedConv2d, originals: list[nn.Module]) -> FusedConv2d:
    conv = originals[0]
    x = torch.randn(1, conv.in_channels, 9, 9, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = nn.Sequential(*originals)(x)
        actual = fused(x.contiguous(memory_format=torch.channels_last))
    scale = float(expected.abs().max()) + 1e-6
    if actual.shape != expected.shape or not torch.allclose(actual, expected, atol=1e-4 * scale):
        raise RuntimeError(f"fused {conv} disagrees with the original layers")
    return fused


class InferenceModel(nn.Module):
    """Wraps an optimised network: converts input to channels-last, returns the same pair."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.num_classes = getattr(network, "num_classes", None)

    def forward(self, images_BCHW: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(images_BCHW.contiguous(memory_format=torch.channels_last))


def optimize_for_inference(
    model: nn.Module,
    device: str | torch.device = "cpu",
    fuse: bool = True,
    channels_last: bool = True,
) -> nn.Module:
    """A copy of ``model`` (eval mode, no gradients) that runs faster, same outputs.

    Args:
        model: an SSD network (left unchanged).
        device: where the copy runs; fusion and packing apply on the CPU only.
        fuse: fold batch norms, fuse conv + activation and pack weights (CPU, float32).
        channels_last: run in channels-last memory format (fusion implies it).

    Returns:
        ``model`` itself (eval mode) when both options are off, else an :class:`InferenceModel`.
    """
    if not (fuse or channels_last):
        return model.eval()
    device = torch.device(device)
    network = copy.deepcopy(model).eval().requires_grad_(False).to(device)
    if fuse and device.type == "cpu" and torch.backends.mkldnn.is_available():
        try:
            return InferenceModel(fuse_for_cpu(network).to(memory_format=torch.channels_last))
        except (RuntimeError, AttributeError, NotImplementedError):
            # An op missing from this PyTorch build or disagreeing: channels-last only.
            network = copy.deepcopy(model).eval().requires_grad_(False).to(device)
    return InferenceModel(network.to(memory_format=torch.channels_last))
