"""``ssd detect``: detect objects in images, folders, globs, videos or paths from stdin.

The model is a checkpoint (``.pt``), an ONNX file or a TorchScript file; by default the most
recently written ``runs/*/best.pt``. torch is imported inside the command only.
"""

from __future__ import annotations

import difflib
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ssdcli import paths
from ssdcli.cli.common import console, err_console
from ssdcli.device import (
    DEVICE_CHOICES,
    DEVICE_METAVAR,
    PRECISION_METAVAR,
    PRECISION_NAMES,
    parse_device,
)
from ssdcli.errors import CheckpointError, UsageError

if TYPE_CHECKING:
    from ssdcli.detect.run import DetectSummary, FrameResult

MAX_TABLES = 10
"""Up to this many images get a table each; more get one summary table."""


def detect_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCE",
            show_default=False,
            help="Images, folders (recursive), globs, videos, or - to read paths from stdin.",
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint or exported file: .onnx, OpenVINO .xml, .tflite, TorchScript "
            "(default: newest runs/*/best.pt).",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Show detections scoring above this (the model keeps down to its recipe's "
            "postprocess.score_threshold, 0.01, for mAP).",
        ),
    ] = 0.5,
    nms_iou: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Per-class NMS IoU. Default: the model's own."),
    ] = None,
    max_det: Annotated[
        int | None, typer.Option(min=1, help="Detections kept per image. Default: the model's own.")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(metavar="A,B", help="Keep only these class names.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: runs/detect/<name>, never overwritten)."),
    ] = None,
    save_json: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Also write COCO results JSON here.")
    ] = None,
    save_images: Annotated[
        bool, typer.Option("--save-images/--no-save-images", help="Write annotated images/videos.")
    ] = True,
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    device: Annotated[
        str, typer.Option(metavar=DEVICE_METAVAR, help=f"{DEVICE_CHOICES}.")
    ] = "auto",
    stride: Annotated[int, typer.Option(min=1, help="Process every K-th video frame.")] = 1,
    precision: Annotated[
        str,
        typer.Option(
            metavar=PRECISION_METAVAR,
            help="Checkpoints: auto (bfloat16 where the device runs it natively), float32 or bf16.",
        ),
    ] = "auto",
) -> None:
    """Detect objects and write annotated images, videos and detections.jsonl.

    Exit code 1 when any input could not be read (each is named on one line; the rest is done).
    """
    from ssdcli.detect.run import count_frames, run_detect, unique_run_dir
    from ssdcli.detect.sources import expand_sources
    from ssdcli.infer.open import find_default_model, open_predictor
    from ssdcli.postprocess import PostprocessOverrides

    if model is not None:
        paths.existing_file(model, "--model", paths.MODEL_FILE, CheckpointError)
    if out is not None:
        paths.output_dir(out, "--out", "an output folder")
    if save_json is not None:
        paths.output_file(save_json, "--save-json", "a JSON file to write")
    model_path = model if model is not None else find_default_model("runs")
    torch_device = parse_device(device)
    asked = PostprocessOverrides(threshold, nms_iou, max_det)
    predictor = open_predictor(
        model_path, torch_device, asked, batch_size=batch, precision=precision
    )
    if classes:
        predictor.classes = _class_indices(classes, predictor.class_names)
    for note in getattr(predictor, "notes", []):
        err_console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    items, problems = expand_sources(sources, sys.stdin if "-" in sources else None)
    for problem in problems:
        _print_problem(problem)
    if not items:
        raise typer.Exit(1)
    out_dir = (
        out if out is not None else unique_run_dir(Path("runs") / "detect", _run_name(sources))
    )
    runs_in = getattr(predictor, "precision", None)
    err_console.print(
        f"model {escape(str(model_path))} ({predictor.info.fmt}) on {torch_device}"
        + (f", {PRECISION_NAMES[runs_in]}" if runs_in else ""),
        soft_wrap=True,
    )
    total = count_frames(items, stride)
    show_tables = total is not None and total <= MAX_TABLES
    progress = _progress(total) if total is None or total > 1 else nullcontext(None)
    with progress as bar:
        task = bar.add_task("detecting", total=total) if bar is not None else None

        def on_result(result: FrameResult) -> None:
            if show_tables:
                (bar.console if bar is not None else console).print(
                    _image_table(result, predictor.class_names)
                )
            if bar is not None:
                bar.advance(task)

        summary = run_detect(
            predictor,
            items,
            out_dir,
            stride=stride,
            save_images=save_images,
            save_json=save_json,
            on_result=on_result,
            on_problem=_print_problem,
            on_warning=_print_warning,
        )
    _print_summary(summary, show_tables)
    if problems or summary.problems:
        raise typer.Exit(1)


def _class_indices(text: str, class_names: list[str]) -> list[int]:
    indices = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name not in class_names:
            close = difflib.get_close_matches(name, class_names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"--classes: the model has no class {name!r}{hint} "
                f"(classes: {', '.join(class_names)})"
            )
        indices.append(class_names.index(name))
    if not indices:
        raise UsageError("--classes: give class names separated by commas, e.g. --classes dog,cat")
    return indices


def _run_name(sources: list[str]) -> str:
    """The output folder's name: the first input that exists (a missing one names nothing),
    a glob by the folder it searches (``imgs/*.jpg`` -> ``imgs``), stdin as ``stdin``."""
    for source in sources:
        if source == "-":
            return "stdin"
        parts = Path(source.rstrip("/")).parts
        wild = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), None)
        if wild is not None:
            base = Path(*parts[:wild]) if wild else Path.cwd()
            name = base.resolve().name
        elif Path(source).exists():
            name = Path(source).resolve().stem
        else:
            continue
        cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
        if cleaned:
            return cleaned
    return "detect"


def _print_problem(problem: Any) -> None:
    err_console.print(
        f"[bold red]skipped:[/] {escape(str(problem))}", highlight=False, soft_wrap=True
    )


def _print_warning(warning: Any) -> None:
    err_console.print(
        f"[yellow]warning:[/] {escape(str(warning))} (detections cover what could be decoded)",
        highlight=False,
        soft_wrap=True,
    )


def _progress(total: int | None) -> Any:
    from rich import progress as rp

    columns = [rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn()]
    columns += [rp.TextColumn("frames"), rp.TimeElapsedColumn(), rp.TimeRemainingColumn()]
    return rp.Progress(*columns, console=err_console, transient=True)


def _image_table(result: FrameResult, class_names: list[str]) -> Table:
    det = result.detections
    table = Table(title=escape(result.frame.name), title_justify="left", show_edge=False)
    for column in ("class", "score", "x0", "y0", "x1", "y1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for box, score, label in zip(
        det.boxes_D4.tolist(), det.scores_D.tolist(), det.labels_D.tolist(), strict=True
    ):
        table.add_row(escape(class_names[label]), f"{score:.3f}", *(f"{v:.1f}" for v in box))
    if not len(det):
        table.add_row("(nothing found)", "", "", "", "", "")
    return table


def _print_summary(summary: DetectSummary, tables_shown: bool) -> None:
    if not tables_shown and summary.per_class:
        table = Table(show_edge=False)
        table.add_column("class")
        table.add_column("detections", justify="right")
        for name, count in summary.per_class.most_common():
            table.add_row(escape(name), str(count))
        console.print(table)
    rate = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    videos = f" ({summary.videos} videos)" if summary.videos else ""
    console.print(
        f"{summary.frames} images/frames{videos}, {summary.detections} detections, "
        f"{summary.seconds:.1f} s ({rate:.1f}/s)",
        soft_wrap=True,
    )
    if summary.out_dir is not None:
        console.print(f"results in {escape(str(summary.out_dir))}", soft_wrap=True)
