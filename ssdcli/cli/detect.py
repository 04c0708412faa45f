"""``ssd detect``: detect objects in images, folders, globs, videos or paths from stdin.

The model is a checkpoint (``.pt``), an ONNX file or a TorchScript file; by default the most
recently written ``runs/*/best.pt``. The options become a
:class:`~ssdcli.detect.run.DetectRequest` for :func:`ssdcli.detect.run.run`; this module prints
what it reports (tables, a progress bar, the summary). torch is imported inside the command only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ssdcli.cli.common import console, err_console
from ssdcli.device import DEVICE_CHOICES, DEVICE_METAVAR, PRECISION_METAVAR, PRECISION_NAMES

if TYPE_CHECKING:
    from ssdcli.detect.frames import DetectSummary, FrameResult
    from ssdcli.detect.run import DetectStart

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
    from ssdcli.detect import DetectRequest, run

    names = [part.strip() for part in classes.split(",") if part.strip()] if classes else None
    request = DetectRequest(
        sources=tuple(sources),
        model=model,
        threshold=threshold,
        nms_iou=nms_iou,
        max_det=max_det,
        classes=tuple(names) if names is not None else None,
        out=out,
        save_json=save_json,
        save_images=save_images,
        batch=batch,
        device=device,
        stride=stride,
        precision=precision,
        stdin=sys.stdin if "-" in sources else None,
    )
    reporter = _Reporter()
    outcome = run(request, reporter)
    if outcome.summary is not None:
        _print_summary(outcome.summary, reporter.show_tables)
    if outcome.failed:
        raise typer.Exit(1)


class _Reporter:
    """Prints a detect run: notes and skipped inputs on stderr, the model line, a progress bar
    (more than one frame), a table per image (up to :data:`MAX_TABLES` images)."""

    def __init__(self) -> None:
        self.show_tables = False
        self.class_names: list[str] = []
        self.progress: Any = None
        self.task: Any = None

    def note(self, text: str) -> None:
        err_console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)

    def warn(self, text: str) -> None:
        _print_warning(text)

    def skipped(self, problem: Any) -> None:
        _print_problem(problem)

    def begin(self, start: DetectStart) -> None:
        err_console.print(
            f"model {escape(str(start.model))} ({start.fmt}) on {start.device}"
            + (f", {PRECISION_NAMES[start.precision]}" if start.precision else ""),
            soft_wrap=True,
        )
        total = start.frames
        self.show_tables = total is not None and total <= MAX_TABLES
        self.class_names = start.class_names
        if total is None or total > 1:
            self.progress = _progress(total)
            self.progress.__enter__()
            self.task = self.progress.add_task("detecting", total=total)

    def frame(self, result: FrameResult) -> None:
        if self.show_tables:
            out = self.progress.console if self.progress is not None else console
            out.print(_image_table(result, self.class_names))
        if self.progress is not None:
            self.progress.advance(self.task)

    def end(self) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None


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
