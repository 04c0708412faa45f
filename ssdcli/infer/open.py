"""Opening a model file: its format read from the file, the predictor that runs it, the default
model of a runs folder.

Formats: an ssdcli checkpoint (eager PyTorch), an exported ONNX file (ONNX Runtime), TorchScript
file, OpenVINO IR (``.xml`` with its ``.bin``, OpenVINO Runtime) or LiteRT ``.tflite`` file (the
LiteRT interpreter).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ssdcli.errors import CheckpointError, UsageError
from ssdcli.infer.base import BasePredictor
from ssdcli.infer.eager import Predictor

if TYPE_CHECKING:
    from ssdcli.postprocess import PostprocessOverrides


def model_format(path: str | Path) -> str:
    """``"onnx"``, ``"torchscript"``, ``"openvino"``, ``"tflite"`` or ``"checkpoint"``, from the
    file's contents.

    Raises:
        CheckpointError: the file is missing or none of these.
    """
    path = Path(path)
    if not path.is_file():
        from ssdcli.paths import MODEL_FILE, path_message, what_is

        raise CheckpointError(path_message("model", path, what_is(path), MODEL_FILE))
    with path.open("rb") as file:
        head = file.read(8)
    if head[4:8] == b"TFL3":  # the TFLite flatbuffer's file identifier
        return "tflite"
    if head.lstrip()[:5] in (b"<?xml", b"<net ") and path.suffix.lower() == ".xml":
        return "openvino"
    if head[:2] != b"PK":  # torch.save and torch.jit.save both write zip archives
        if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # protobuf field 1 (ir_version)
            return "onnx"
        raise CheckpointError(
            f"{path} is not an ssdcli checkpoint, ONNX, TorchScript, OpenVINO or TFLite file; "
            "pass a runs/<name>/best.pt or a file written by `ssd export`"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({error}); re-create it") from error
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return "torchscript"
    return "checkpoint"


def find_default_model(runs_dir: str | Path = "runs") -> Path:
    """The most recently written ``runs/*/best.pt``.

    Raises:
        UsageError: none exists (the message says how to train one or pass ``--model``).
    """
    candidates = [p for p in Path(runs_dir).glob("*/best.pt") if p.is_file()]
    if not candidates:
        raise UsageError(
            f"no trained model found (no {Path(runs_dir) / '*' / 'best.pt'}); train one with "
            "`ssd train` or pass --model FILE (a checkpoint, or an .onnx, OpenVINO .xml, .tflite "
            "or TorchScript file)"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def open_predictor(
    path: str | Path,
    device: str = "cpu",
    overrides: PostprocessOverrides | None = None,
    batch_size: int = 8,
    classes: Sequence[int] | None = None,
    precision: str = "auto",
    threads: int = 0,
) -> BasePredictor:
    """A predictor for a checkpoint or an exported file (format read from the file).

    Args:
        path: the model file.
        device: torch device for checkpoints and TorchScript; ONNX Runtime uses CUDA when the
            device is a GPU and the CUDA provider is installed, else the CPU.
        overrides: post-processing asked for at run time; None values = the model's own.
        batch_size: images per forward pass (models exported with a fixed batch use theirs).
        classes: keep only these labels.
        precision: a checkpoint's precision (``auto``, ``float32``, ``bf16``; see
            :class:`~ssdcli.infer.eager.Predictor`). Exported files run in the precision they
            were exported in: ``auto`` and ``float32`` are accepted for them, ``bf16`` is not.
        threads: inference threads of ONNX Runtime, OpenVINO and LiteRT (0 = the runtime's
            default); checkpoints and TorchScript use torch's global setting.

    Raises:
        CheckpointError: the file cannot be read.
        UsageError: ``precision`` is not a precision, or ``bf16`` for an exported file.
    """
    from ssdcli.device import check_precision

    asked = check_precision(precision)  # a bad value fails before any file is opened
    fmt = model_format(path)
    if fmt != "checkpoint" and asked == "bf16":
        raise UsageError(
            f"--precision bf16 applies to checkpoints; {path} is an exported {fmt} file that "
            "runs in the precision it was exported in (use --precision auto or float32)"
        )
    if fmt == "onnx":
        from ssdcli.infer.runtimes import OnnxPredictor

        return OnnxPredictor(path, device, overrides, batch_size, classes, threads)
    if fmt == "openvino":
        from ssdcli.infer.openvino_runtime import OpenVinoPredictor

        return OpenVinoPredictor(path, overrides, batch_size, classes, threads)
    if fmt == "tflite":
        from ssdcli.infer.litert_runtime import LiteRtPredictor

        return LiteRtPredictor(path, overrides, batch_size, classes, threads)
    if fmt == "torchscript":
        from ssdcli.infer.runtimes import TorchScriptPredictor

        return TorchScriptPredictor(path, device, overrides, batch_size, classes)
    from ssdcli.checkpoint.file import load_detector

    loaded = load_detector(path, device=device)
    return Predictor(
        loaded.detector,
        loaded.recipe,
        device,
        class_names=loaded.class_names,
        category_ids=loaded.category_ids,
        overrides=overrides,
        batch_size=batch_size,
        classes=classes,
        precision=precision,
    )
