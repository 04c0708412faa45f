"""``ssd eval``: score a checkpoint on a data split (VOC07, VOC area and/or COCO metrics).

Prints one Rich table of per-class AP with the mean (every requested family in the same table),
writes a precision/recall PNG (one small panel per class) and, on request, the metrics and the
detections (COCO results) as JSON. torch is imported inside the command only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ssdcli.cli.common import console, err_console
from ssdcli.errors import EvalError, UsageError

if TYPE_CHECKING:
    from ssdcli.evaluate.evaluator import EvalResult

METRICS = ("voc07", "voc", "coco", "all")
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
            metavar="[CHECKPOINT]",
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
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="PR-curve PNG. Default: <checkpoint>_pr_<split>.png next to the checkpoint.",
        ),
    ] = None,
) -> None:
    """Evaluate a checkpoint: per-class AP table with the mean, PR curves, optional JSON files."""
    if metric is not None and metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    device = _check_device(device)

    from ssdcli.checkpoint.file import load_detector
    from ssdcli.evaluate.evaluator import evaluate_detector, write_coco_results, write_metrics_json
    from ssdcli.infer.open import find_default_model
    from ssdcli.viz.plots import plot_pr_curves

    if checkpoint is None:
        checkpoint = find_default_model()
        console.print(f"checkpoint: {checkpoint} (the newest runs/*/best.pt)")

    loaded = load_detector(checkpoint, device=device)
    recipe = loaded.recipe
    manifest = _load_manifest(data, recipe)
    if list(manifest.class_names) != list(loaded.class_names):
        raise EvalError(
            f"{checkpoint} detects {loaded.class_names} but the data set {manifest.source} has "
            f"classes {manifest.class_names}; evaluate on the data the model was trained for "
            "(--data MANIFEST)"
        )
    split = split or recipe.data.test_split
    metric = metric or recipe.eval.metric
    result = evaluate_detector(
        loaded.detector, manifest, split, recipe, metric, device, batch, progress=True
    )
    console.print(results_table(result, f"{checkpoint} on split '{split}'"))
    undefined = [n for n, count in zip(result.class_names, result.num_gt, strict=True) if not count]
    if undefined:
        console.print(
            f"no ground truth in '{split}' for {', '.join(undefined)}: AP undefined (-), "
            "left out of the means"
        )
    speed = len(result.detections) / result.seconds if result.seconds > 0 else float("nan")
    err_console.print(
        f"{len(result.detections)} images in {result.seconds:.1f} s ({speed:.1f} images/s)"
    )

    plot_path = plot or checkpoint.with_name(f"{checkpoint.stem}_pr_{split}.png")
    title = f"{checkpoint.name} on '{split}' ({len(result.detections)} images)"
    written = [
        plot_pr_curves(result.curves, result.class_names, plot_path, *_plot_aps(result), title)
    ]
    if json_path is not None:
        written.append(write_metrics_json(result, json_path, checkpoint=str(checkpoint)))
    if save_detections is not None:
        written.append(write_coco_results(result, save_detections))
    for path in written:
        console.print(f"wrote {path}")


def _plot_aps(result: EvalResult) -> tuple[list[float], str]:
    """AP shown in the PR panels' titles: the VOC family evaluated, else VOC area AP."""
    from ssdcli.metrics.voc import class_aps

    for key in ("voc07", "voc"):
        if key in result.per_class:
            return list(result.per_class[key]), COLUMNS[key][0]
    return list(class_aps(result.curves, use_07_metric=False)), COLUMNS["voc"][0]


def _check_device(device: str) -> str:
    import re

    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?|mps", device):
        raise UsageError(f"--device {device!r}: use cpu, cuda, cuda:N or auto")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_manifest(data: Path | None, recipe):  # -> ssdcli.data.Manifest
    from ssdcli.data.manifest import build_manifest
    from ssdcli.data.records import Manifest

    if data is not None:
        return Manifest.load(data)
    return build_manifest(recipe.data)


def _cell(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


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
