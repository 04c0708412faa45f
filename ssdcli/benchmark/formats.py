"""The formats ``ssd benchmark`` can export to, and whether this machine has their packages."""

from __future__ import annotations

import importlib.util

from ssdcli.errors import UsageError

FORMATS = ("onnx", "torchscript", "openvino", "tflite")
PACKAGES = {  # format -> (import names, ssdcli extra that installs them)
    "onnx": (("onnx", "onnxruntime"), "export"),
    "torchscript": ((), "export"),
    "openvino": (("onnx", "openvino"), "openvino"),
    "tflite": (("litert_torch", "ai_edge_litert"), "tflite"),
}
INT8 = {"onnx": ("onnxruntime",), "openvino": ("nncf",)}
"""Formats with an int8 row, and what their quantization needs beyond the format's packages."""


def parse_list(text: str | None, name: str) -> list[str]:
    """``"1,8"`` or ``"1 8"`` -> ``["1", "8"]``; None or empty -> ``[]``."""
    return [part for part in (text or "").replace(",", " ").split() if part]


def parse_formats(text: str | None) -> list[str]:
    """``--formats``: names from :data:`FORMATS`; default all of them.

    Raises:
        UsageError: an unknown name.
    """
    names = [name.lower() for name in parse_list(text, "--formats")] or list(FORMATS)
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise UsageError(f"--formats {unknown[0]!r}: use some of {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def parse_ints(text: str | None, name: str, default: list[int]) -> list[int]:
    """``--batches`` / ``--threads``: positive integers.

    Raises:
        UsageError: a value that is not a positive integer.
    """
    values = []
    for part in parse_list(text, name):
        if not part.isdigit() or int(part) < 1:
            raise UsageError(f"{name} {part!r}: give positive integers, e.g. {name} 1,8")
        values.append(int(part))
    return list(dict.fromkeys(values)) or default


def missing_package(fmt: str, int8: bool = False) -> str | None:
    """None when ``fmt`` (and its int8 quantizer) can run here, else the row's note:
    ``"not installed: pip install 'ssdcli[openvino]'"``."""
    modules, extra = PACKAGES[fmt]
    needed = (*modules, *(INT8.get(fmt, ()) if int8 else ()))
    for module in needed:
        if importlib.util.find_spec(module) is None:
            return f"not installed: pip install 'ssdcli[{extra}]'"
    return None
