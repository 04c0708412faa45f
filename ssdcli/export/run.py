"""``ssd export``'s one entry point: a checkpoint -> an exported file, verified against it.

:func:`run` checks the paths and calls :func:`ssdcli.export.exporter.export_model`, which writes,
verifies and (for ``int8``) scores the file; its progress goes to the reporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.export.exporter import ExportResult


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """What ``ssd export`` was asked (None = the checkpoint recipe's ``export`` setting).

    Attributes:
        checkpoint: an ssdcli checkpoint.
        format: ``onnx``, ``torchscript``, ``openvino`` or ``tflite`` (any case).
        out: the file to write; None = beside the checkpoint.
        with_nms: decoding and NMS inside (True) or head outputs and priors (False).
        dynamic_batch: any batch size (True) or batch 1 (False).
        opset: the ONNX opset (>= 17).
        half: the network in float16; int8: static int8 quantization (ONNX, OpenVINO), calibrated
            on ``calibration_images`` images of the manifest ``calibration``.
    """

    checkpoint: Path
    format: str | None = None
    out: Path | None = None
    with_nms: bool | None = None
    dynamic_batch: bool | None = None
    opset: int | None = None
    half: bool = False
    int8: bool = False
    calibration: Path | None = None
    calibration_images: int = 64


def run(request: ExportRequest, reporter: Reporter) -> ExportResult:
    """Exports and verifies the checkpoint as ``request`` says; returns what was written.

    Raises:
        CheckpointError: a missing or unreadable checkpoint; UsageError: options that do not go
            together, or a bad path; ExportError: the export failed its verification.
    """
    from ssdcli import paths
    from ssdcli.errors import CheckpointError
    from ssdcli.export.exporter import export_model

    paths.existing_file(request.checkpoint, "checkpoint", paths.CHECKPOINT_FILE, CheckpointError)
    if request.out is not None:
        paths.output_file(request.out, "--out", "a file to write the exported model to")
    if request.calibration is not None:
        paths.existing_file(
            request.calibration, "--calibration", "a manifest.json from ssd prepare-data"
        )
    return export_model(
        request.checkpoint,
        out=request.out,
        fmt=request.format.lower() if request.format else None,
        with_nms=request.with_nms,
        dynamic_batch=request.dynamic_batch,
        opset=request.opset,
        half=request.half,
        int8=request.int8,
        calibration=request.calibration,
        calibration_images=request.calibration_images,
        log=reporter.note,
    )
