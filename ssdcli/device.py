"""The one ``--device`` parser every command uses, and the precision a device runs networks in.

Accepted values: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` and ``auto`` (CUDA when available, else
the CPU). torch is imported only to resolve ``auto`` and to check that the device exists, so
``ssd --help`` stays free of it.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext

from ssdcli.errors import UsageError

DEVICE_CHOICES = "cpu, cuda, cuda:N, mps or auto"
DEVICE_METAVAR = "cpu|cuda|cuda:N|mps|auto"
"""How ``--device`` shows its choices in the help."""
_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?|mps")


def parse_device(device: str) -> str:
    """Checks a ``--device`` value and resolves ``auto``.

    Args:
        device: what the user typed.

    Returns:
        A torch device string: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises:
        UsageError: the value is none of the accepted ones, or names a device this machine lacks
            (exit code 2).
    """
    value = device.strip().lower()
    if not _PATTERN.fullmatch(value):
        raise UsageError(f"--device {device!r}: use {DEVICE_CHOICES}")
    if value == "cpu":
        return value
    import torch

    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is available; use --device cpu")
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA "
                f"device(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
        return value
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UsageError(f"--device {device}: MPS is not available here; use --device cpu")
    return value


def has_native_bf16(device_type: str) -> bool:
    """True when ``device_type`` runs bfloat16 convolutions natively (faster than float32).

    CPUs: oneDNN's bf16 kernels need AVX-512 BF16 or AMX; elsewhere they are emulated and slower
    than float32. CUDA: compute capability 8.0 (Ampere) or newer. Other devices: False.
    """
    import torch

    if device_type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    if device_type == "cuda":
        if not torch.cuda.is_available():
            return False
        return torch.cuda.get_device_capability()[0] >= 8
    return False


INFERENCE_PRECISIONS = ("auto", "float32", "bf16")
"""``--precision`` values of ``ssd detect`` and ``ssd eval``."""

PRECISION_METAVAR = "|".join(INFERENCE_PRECISIONS)
"""How ``--precision`` shows its choices in the help."""
PRECISION_NAMES = {
    "float32": "float32",
    "bf16": "bfloat16 autocast",
    "exported": "the exported file's precision",
}
"""How commands name a resolved precision in their output."""


def check_precision(precision: str) -> str:
    """A ``--precision`` value, normalised (``"auto"``, ``"float32"`` or ``"bf16"``).

    Raises:
        UsageError: it is none of :data:`INFERENCE_PRECISIONS` (exit code 2).
    """
    value = precision.strip().lower()
    if value not in INFERENCE_PRECISIONS:
        raise UsageError(f"--precision {precision!r}: use one of {', '.join(INFERENCE_PRECISIONS)}")
    return value


def resolve_precision(precision: str, device_type: str) -> str:
    """The precision a network runs in at inference: ``"float32"`` or ``"bf16"``.

    ``auto`` is bfloat16 autocast where the device runs it natively (:func:`has_native_bf16`),
    float32 elsewhere; ``bf16`` asked for on a device without autocast support (MPS) falls back
    to float32 as well.

    Raises:
        UsageError: ``precision`` is none of :data:`INFERENCE_PRECISIONS` (exit code 2).
    """
    value = check_precision(precision)
    if value == "float32" or device_type not in ("cpu", "cuda"):
        return "float32"
    if value == "auto" and not has_native_bf16(device_type):
        return "float32"
    return "bf16"


def inference_autocast(precision: str, device_type: str) -> AbstractContextManager[object]:
    """The context a forward pass runs under for a resolved precision (:func:`resolve_precision`).

    bfloat16 autocast runs convolutions and matrix products in bfloat16 and keeps reductions and
    normalisations in float32; the caller casts the outputs back to float32 before decoding.
    """
    if precision != "bf16":
        return nullcontext()
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16)
