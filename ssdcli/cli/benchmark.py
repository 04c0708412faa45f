"""``ssd benchmark``: a checkpoint exported to every format, verified, timed and scored in one
table (plus benchmark.json / benchmark.csv). torch is imported inside the command only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ssdcli.cli.common import console, err_console

if TYPE_CHECKING:
    from ssdcli.benchmark.table import BenchResult


def benchmark_command(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", show_default=False, help="An ssdcli checkpoint.")
    ],
    formats: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="Formats to export, e.g. onnx,openvino (onnx, torchscript, openvino, tflite). "
            "Default: all; those not installed are listed as such.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            metavar="MANIFEST",
            help="manifest.json to score on (mAP) and calibrate int8 on. Without it: speed only.",
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split scored. Default: the recipe's data.test_split.")
    ] = None,
    batches: Annotated[
        str, typer.Option(metavar="LIST", help="Batch sizes timed, e.g. '1 8' or 1,8.")
    ] = "1,8",
    threads: Annotated[
        str | None,
        typer.Option(metavar="LIST", help="Thread counts timed, e.g. 1,2. Default: torch's."),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Least timed calls per cell.")] = 5,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder of the exports and the JSON/CSV. Default: MODEL's benchmark/."),
    ] = None,
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="ONNX and OpenVINO int8 rows (with --data).")
    ] = True,
    calibration_images: Annotated[
        int, typer.Option(min=1, help="Images of --data that calibrate int8.")
    ] = 64,
) -> None:
    """Export a checkpoint to each format, verify, time and score each, in one table."""
    from ssdcli.benchmark import BenchRequest, run
    from ssdcli.benchmark.formats import parse_formats, parse_ints
    from ssdcli.cli.render import ConsoleReporter

    request = BenchRequest(
        model=model,
        formats=tuple(parse_formats(formats)),
        data=data,
        split=split,
        batches=tuple(parse_ints(batches, "--batches", [1, 8])),
        threads=tuple(parse_ints(threads, "--threads", [])),
        rounds=rounds,
        out=out,
        int8=int8,
        calibration_images=calibration_images,
    )
    result = run(request, ConsoleReporter(err_console))
    console.print(results_table(result))
    for path in result.written:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)


def results_table(result: BenchResult) -> Table:
    """One row per way of running the model; one ms/image column per (batch, threads)."""
    from ssdcli.benchmark.table import cell

    load = ", ".join(f"{v:g}" for v in result.machine["load_avg_1_5_15"])
    scored = f"split '{result.split}' ({result.images} images)" if result.split else "no data"
    table = Table(
        title=f"{result.model}: {scored}; {result.machine['cpu']}, "
        f"{result.machine['cores']} cores, load {load}",
        title_justify="left",
    )
    cells = [(b, t) for t in result.threads for b in result.batches]
    table.add_column("runtime")
    table.add_column("precision")
    table.add_column("MB", justify="right")
    table.add_column("load s", justify="right")
    for b, t in cells:
        table.add_column(f"ms/img b{b} t{t}", justify="right")
    for name in ("img/s", "VOC mAP", "COCO AP", "Δ VOC"):
        table.add_column(name, justify="right")
    table.add_column("check")
    for row in result.rows:
        if row.status != "ok":
            blank = ["-"] * (len(cells) + 6)
            table.add_row(row.name, row.precision, *blank, f"[dim]{escape(row.status)}[/]")
            continue
        timings = [_num(row.ms_per_image.get(cell(b, t)), ".1f") for b, t in cells]
        table.add_row(
            row.name,
            row.precision,
            _num(row.size_mb, ".1f"),
            _num(row.load_s, ".2f"),
            *timings,
            _num(row.images_per_s, ".1f"),
            _num(row.voc_map, ".4f"),
            _num(row.coco_ap, ".4f"),
            _num(row.map_diff, "+.4f"),
            escape(_short(row.check)),
        )
    return table


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _short(check: str) -> str:
    """The verdict of a check, without the figures (they are in the JSON)."""
    return check.split(":", 1)[0]
