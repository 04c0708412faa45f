"""``ssd export``: a checkpoint -> ONNX, TorchScript, OpenVINO or TFLite, verified against the
checkpoint.

torch and the format's packages are imported inside the command only (``ssdcli[export]``,
``ssdcli[openvino]``, ``ssdcli[tflite]`` provide them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ssdcli.cli.common import console, err_console


def export_command(
    checkpoint: Annotated[
        Path, typer.Argument(metavar="CHECKPOINT", show_default=False, help="An ssdcli checkpoint.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="onnx|torchscript|openvino|tflite",
            help="Default: the recipe's.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: next to the checkpoint).")
    ] = None,
    with_nms: Annotated[
        bool | None,
        typer.Option(
            "--with-nms/--raw",
            help="Decoding + NMS inside (outputs boxes, scores, labels, count) or head outputs "
            "+ priors. Default: the recipe's (with NMS).",
            show_default=False,
        ),
    ] = None,
    dynamic_batch: Annotated[
        bool | None,
        typer.Option(
            "--dynamic-batch/--fixed-batch",
            help="Any batch size, or batch 1. Default: the recipe's export.dynamic_batch (fixed).",
            show_default=False,
        ),
    ] = None,
    opset: Annotated[
        int | None,
        typer.Option(min=17, help="ONNX opset (>= 17). Default: the recipe's export.opset (17)."),
    ] = None,
    half: Annotated[bool, typer.Option("--half", help="Run the network in float16.")] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8", help="int8 static quantization, ONNX or OpenVINO (needs --calibration)."
        ),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(metavar="MANIFEST", help="manifest.json whose images calibrate --int8."),
    ] = None,
    calibration_images: Annotated[
        int, typer.Option(min=1, help="Images of the manifest used to calibrate.")
    ] = 64,
) -> None:
    """Export a checkpoint to ONNX, TorchScript, OpenVINO or TFLite, verified against it."""
    from ssdcli.cli.render import ConsoleReporter
    from ssdcli.export import ExportRequest, run

    request = ExportRequest(
        checkpoint=checkpoint,
        format=fmt,
        out=out,
        with_nms=with_nms,
        dynamic_batch=dynamic_batch,
        opset=opset,
        half=half,
        int8=int8,
        calibration=calibration,
        calibration_images=calibration_images,
    )
    result = run(request, ConsoleReporter(err_console))
    if result.int8 is not None:
        report = result.int8
        table = Table(
            title=f"mAP@0.5 on {report.images} images of split {report.split or '(all)'}",
            title_justify="left",
            show_edge=False,
        )
        for column in ("model", "VOC07 11-point", "VOC area"):
            table.add_column(column, justify="left" if column == "model" else "right")
        table.add_row("float32", f"{100 * report.float_map07:.2f}", f"{100 * report.float_map:.2f}")
        table.add_row("int8", f"{100 * report.int8_map07:.2f}", f"{100 * report.int8_map:.2f}")
        console.print(table)
        console.print(f"int8 loses {report.drop_points:.2f} mAP points (VOC07)")
    size_mb = result.size_bytes / 1e6
    console.print(
        f"wrote {escape(str(result.path))} ({result.fmt}, {result.form}, {size_mb:.1f} MB)",
        soft_wrap=True,
    )
