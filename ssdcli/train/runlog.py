"""What a training run reports: ``metrics.csv``, live progress, curves and the final summary.

Progress is a Rich bar (epoch, iteration, loss parts, lr, images/s, ETA) when the console is a
terminal, and one plain line every ``log_every`` iterations otherwise (CI, redirected output).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ssdcli.atomic import atomic_path
from ssdcli.metrics.undefined import metric_csv, metric_text

TRAIN_COLUMNS = [
    "iteration",
    "epoch",
    "loss",
    "box_loss",
    "cls_loss",
    "lr",
    "images_per_s",
    "cores",  # CPU seconds / wall seconds of the log window (rank 0 and its loader workers)
    "time_s",
]


class MetricsLog:
    """Appends rows to ``metrics.csv``; eval metrics become extra columns as they first appear.

    Train rows fill the train columns, eval rows fill ``iteration``, ``epoch`` and the metric
    columns; empty cells stay empty. On resume, rows after the checkpoint's iteration are dropped
    so that the file reads as if the run had never stopped.
    """

    def __init__(self, path: Path, resume_iteration: int | None = None) -> None:
        self.path = Path(path)
        self.columns = list(TRAIN_COLUMNS)
        self.rows: list[dict[str, str]] = []
        if resume_iteration is not None and self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or TRAIN_COLUMNS)
                self.rows = [r for r in reader if int(r["iteration"]) <= resume_iteration]
        self._rewrite()

    def add(self, values: Mapping[str, float | int]) -> None:
        """Adds one row; unknown keys become new columns (the file is then rewritten)."""
        row = {key: _fmt(value) for key, value in values.items()}
        self.rows.append(row)
        new = [key for key in row if key not in self.columns]
        if new:
            self.columns.extend(new)
            self._rewrite()
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns, restval="").writerow(row)

    def series(self, column: str) -> tuple[list[int], list[float]]:
        """``(iterations, values)`` of the rows where ``column`` is filled."""
        xs, ys = [], []
        for row in self.rows:
            if row.get(column, "") != "":
                xs.append(int(row["iteration"]))
                ys.append(float(row[column]))
        return xs, ys

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)


def _fmt(value: float | int) -> str:
    return metric_csv(value)  # an undefined metric (NaN) is an empty cell


def eval_line(iteration: int, metrics: Mapping[str, float]) -> str:
    """``eval @ 500: voc_map50 0.4123  coco_aps -`` (undefined metrics as ``-``)."""
    shown = "  ".join(f"{key} {metric_text(value)}" for key, value in metrics.items())
    return f"eval @ {iteration}: {shown}"


def format_duration(seconds: float) -> str:
    """``"1h02m"``, ``"4m05s"`` or ``"12s"``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class TrainProgress:
    """Live progress of a run; a no-op on ranks other than 0 (``enabled=False``).

    Args:
        console: where to print; a Rich bar is used when ``console.is_terminal``.
        total_iterations: length of the run; ``start_iteration``: where it (re)starts.
        log_every: plain-line period in iterations (non-terminal consoles).
    """

    def __init__(
        self,
        console: Console,
        total_iterations: int,
        start_iteration: int,
        log_every: int,
        enabled: bool = True,
    ) -> None:
        self.console = console
        self.total = total_iterations
        self.start = start_iteration
        self.log_every = max(1, log_every)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.live = enabled and console.is_terminal
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> TrainProgress:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "train", total=self.total, completed=self.start, epoch=0, stats=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def set_total(self, total_iterations: int) -> None:
        """A new run length (``train.time`` fixes it after timing the first steps)."""
        self.total = total_iterations
        if self._bar is not None:
            self._bar.update(self._task, total=total_iterations)

    def set_log_every(self, log_every: int) -> None:
        """A new plain-line period (``train.time`` scales it with the run)."""
        self.log_every = max(1, log_every)

    def eta_seconds(self, iteration: int) -> float:
        """Estimated time to the end from the mean speed since (re)start."""
        done = iteration - self.start
        if done <= 0:
            return math.nan
        return (time.perf_counter() - self.t0) / done * (self.total - iteration)

    def update(self, iteration: int, epoch: int, stats: Mapping[str, float]) -> None:
        """Shows the state after ``iteration`` completed steps; ``stats`` from the train loop."""
        if not self.enabled:
            return
        text = (
            f"loss {stats['loss']:.3f} (box {stats['box_loss']:.3f} cls {stats['cls_loss']:.3f})"
            f"  lr {stats['lr']:.2e}  {stats['images_per_s']:.1f} img/s"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=iteration, epoch=epoch, stats=text)
        elif iteration % self.log_every == 0 or iteration == self.total:
            eta = self.eta_seconds(iteration)
            eta_text = "?" if math.isnan(eta) else format_duration(eta)
            self.console.print(
                f"iter {iteration}/{self.total}  epoch {epoch}  {text}  eta {eta_text}",
                highlight=False,
                soft_wrap=True,
            )

    def message(self, text: str) -> None:
        """Prints a line above the bar (evaluation results, checkpoints)."""
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)


def run_summary(
    run_dir: Path,
    result: Any,
    global_batch: int,
    log: MetricsLog,
    best_metric_name: str,
    plots: list[Path],
) -> Table:
    """The final table: where the run is, how long it took, its best and last metrics.

    ``result`` is the :class:`~ssdcli.train.loop.TrainResult` of the run.
    """
    rows = {"run": str(run_dir), "iterations": f"{result.iteration}/{result.total_iterations}"}
    if result.interrupted:
        rows["status"] = f"interrupted; resume with: ssd train --resume {run_dir}"
    rows["time"] = format_duration(result.seconds)
    if getattr(result, "budget", None):
        rows["time budget"] = result.budget
    rows["images/s"] = f"{global_batch * result.iteration / max(result.seconds, 1e-9):.1f}"
    cores = getattr(result, "cores_busy", None)
    if cores is not None:
        rows["CPU cores busy"] = (
            f"{cores:.2f} of {os.cpu_count()} (CPU time / wall time, all processes)"
        )
    _, losses = log.series("loss")
    if losses:
        rows["final loss"] = f"{losses[-1]:.4f} (mean of the last log window, as its console line)"
    if result.best_metric is not None:
        rows[f"best {best_metric_name}"] = (
            f"{metric_text(result.best_metric)} @ iteration {result.best_iteration}"
        )
    for key, value in result.last_metrics.items():
        rows[f"last {key}"] = metric_text(value)
    files = [p.name for p in (run_dir / "best.pt", run_dir / "last.pt") if p.exists()]
    rows["files"] = ", ".join(files + ["metrics.csv", "recipe.yaml"] + [p.name for p in plots])
    return summary_table(rows)


def summary_table(rows: Mapping[str, str]) -> Table:
    """A two-column table (item, value), as printed at the end of ``ssd train``."""
    table = Table(title="Training summary", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def plot_run_curves(metrics_csv: Path, run_dir: Path, metric_names: list[str]) -> list[Path]:
    """Writes ``loss.png`` (total, box, cls), ``lr.png`` (log scale) and ``map.png`` (eval)."""
    from ssdcli.viz.plots import plot_curves

    figures = [
        ("loss.png", {"loss": ["loss", "box_loss", "cls_loss"]}, ()),
        ("lr.png", {"learning rate": ["lr"]}, ("learning rate",)),
        ("map.png", {"validation": metric_names}, ()),
    ]
    written = []
    for filename, panels, log_y in figures:
        if any(panels.values()):
            written.append(plot_curves(metrics_csv, run_dir / filename, panels=panels, log_y=log_y))
    return written
