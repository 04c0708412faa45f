"""``ssd eval``: score a checkpoint on a data split (VOC07, VOC area and/or COCO metrics).

Prints one Rich table of per-class AP with the mean (every requested family in the same table),
writes a precision/recall PNG (one small panel per class) and, on request, the metrics and the
detections (COCO results) as JSON. torch is imported inside the command only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ssdcli.cli.common import console, err_console
from ssdcli.device import DEVICE_CHOICES, DEVICE_METAVAR, PRECISION_METAVAR, PRECISION_NAMES
from ssdcli.metrics.undefined import metric_text

if TYPE_CHECKING:
    from ssdcli.evaluate.evaluator import EvalResult

COLUMNS = {  # per-class column key in EvalResult.per_class -> (header, mean key in metrics)
    "voc07": ("VOC07 AP50", "voc07_map50"),
    "voc": ("VOC AP50", "voc_map50"),
    "coco": ("COCO AP", "coco_ap"),
    "coco50": ("COCO AP50", "coco_ap50"),
}


def eval_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            metavar="CHECKPOINT",
            show_default=False,
            help="A checkpoint written by ssd train. Default: the newest runs/*/best.pt.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="MANIFEST",
            help="A manifest.json from ssd prepare-data. Default: the checkpoint recipe's data.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Split to evaluate. Default: the recipe's data.test_split (test)."),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            metavar="voc07|voc|coco|all",
            help="Metric family; all = every family in one table. Default: recipe's eval.metric.",
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the metrics as JSON.")
    ] = None,
    save_detections: Annotated[
        Path | None,
        typer.Option(
            "--save-detections",
            metavar="FILE",
            help="Write the detections as COCO results JSON (original category ids).",
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Images per forward pass. Default: eval.batch_size."),
    ] = None,
    device: Annotated[
        str, typer.Option(metavar=DEVICE_METAVAR, help=f"{DEVICE_CHOICES}.")
    ] = "auto",
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="PR-curve PNG. Default: <checkpoint>_pr_<split>.png next to the checkpoint.",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Write report.html beside the checkpoint: metrics, confusion matrix, worst "
            "images, false-positive kinds, label statistics, training curves.",
        ),
    ] = False,
    report_threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Score threshold of the report's error analysis. Default: the max-F1 one.",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            metavar=PRECISION_METAVAR,
            help="float32 (the reference figures), bf16, or auto (bfloat16 where the device "
            "runs it natively, as ssd detect does by default)."
        ),
    ] = "float32",
) -> None:
    """Evaluate a checkpoint: per-class AP table with the mean, PR curves, optional JSON files."""
    from ssdcli.cli.render import ConsoleReporter
    from ssdcli.evaluate import EvalRequest, run

    request = EvalRequest(
        checkpoint=checkpoint,
        data=data,
        split=split,
        metric=metric,
        json_path=json_path,
        save_detections=save_detections,
        batch=batch,
        device=device,
        plot=plot,
        report=report,
        report_threshold=report_threshold,
        precision=precision,
    )
    outcome = run(request, ConsoleReporter(console, plain=False, warn_to=err_console))
    result, split = outcome.result, outcome.split
    console.print(results_table(result, f"{outcome.checkpoint} on split '{split}'"))
    undefined = [n for n, count in zip(result.class_names, result.num_gt, strict=True) if not count]
    if undefined:
        console.print(
            f"no ground truth in '{split}' for {', '.join(undefined)}: AP undefined (-), "
            "left out of the means"
        )
    speed = len(result.detections) / result.seconds if result.seconds > 0 else float("nan")
    err_console.print(
        f"{len(result.detections)} images in {result.seconds:.1f} s ({speed:.1f} images/s, "
        f"{PRECISION_NAMES[result.precision]})"
    )
    for path in outcome.written:
        console.print(f"wrote {path}")


def _cell(value: float) -> str:
    return metric_text(value)


def results_table(result: EvalResult, title: str) -> Table:
    """Per-class AP (one column per family), ground-truth counts, and the mean row.

    COCO's AP75/APs/APm/APl, which have no per-class column, go in the caption.
    """
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("class", footer="mean")
    table.add_column("GT", justify="right", footer=str(int(result.num_gt.sum())))
    for key in result.per_class:
        header, mean_key = COLUMNS[key]
        table.add_column(header, justify="right", footer=_cell(result.metrics[mean_key]))
    for c, name in enumerate(result.class_names):
        cells = [_cell(values[c]) for values in result.per_class.values()]
        table.add_row(name, str(int(result.num_gt[c])), *cells)
    if "coco" in result.per_class:
        extra = {"coco_ap75": "AP75", "coco_aps": "APs", "coco_apm": "APm", "coco_apl": "APl"}
        shown = "  ".join(f"{name} {_cell(result.metrics[key])}" for key, name in extra.items())
        table.caption = f"COCO {shown}"
    return table
