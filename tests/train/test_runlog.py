"""metrics.csv writing, resume truncation, plain progress lines and the curve plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rich.console import Console

from ssdcli.train.runlog import MetricsLog, TrainProgress, format_duration, plot_run_curves


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _train_row(iteration: int) -> dict[str, float | int]:
    return {"iteration": iteration, "epoch": 0, "loss": 3.0, "box_loss": 1.0, "cls_loss": 2.0,
            "lr": 0.01, "images_per_s": 5.0, "time_s": 1.0}  # fmt: skip


def test_eval_metrics_become_columns(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.csv")
    log.add(_train_row(10))
    log.add({"iteration": 10, "epoch": 0, "voc07_map50": 0.5})
    log.add(_train_row(20))
    rows = _read(tmp_path / "metrics.csv")
    assert [r["iteration"] for r in rows] == ["10", "10", "20"]
    assert rows[0]["voc07_map50"] == ""
    assert rows[1]["voc07_map50"] == "0.5"
    assert log.series("voc07_map50") == ([10], [0.5])
    assert log.series("loss") == ([10, 20], [3.0, 3.0])


def test_resume_drops_rows_after_the_checkpoint(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.csv")
    for iteration in (10, 20, 30):
        log.add(_train_row(iteration))
    resumed = MetricsLog(tmp_path / "metrics.csv", resume_iteration=20)
    resumed.add(_train_row(30))
    assert [r["iteration"] for r in _read(tmp_path / "metrics.csv")] == ["10", "20", "30"]


def test_plain_progress_prints_every_log_every(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    stats = {"loss": 1.5, "box_loss": 0.5, "cls_loss": 1.0, "lr": 0.001, "images_per_s": 8.0}
    with TrainProgress(console, total_iterations=4, start_iteration=0, log_every=2) as progress:
        for iteration in range(1, 5):
            progress.update(iteration, 0, stats)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("iter 2/4  epoch 0  loss 1.500 (box 0.500 cls 1.000)")
    assert "lr 1.00e-03" in lines[0] and "8.0 img/s" in lines[0]


def test_format_duration() -> None:
    assert format_duration(5) == "5s"
    assert format_duration(245) == "4m05s"
    assert format_duration(3720) == "1h02m"


def test_plots_are_written(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.csv")
    log.add(_train_row(10))
    log.add({"iteration": 10, "epoch": 0, "voc07_map50": 0.5})
    written = plot_run_curves(log.path, tmp_path, ["voc07_map50"])
    assert sorted(p.name for p in written) == ["loss.png", "lr.png", "map.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_undefined_metrics_are_blank_in_csv_and_dash_for_people(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ssdcli.train.runlog import eval_line, run_summary

    nan = float("nan")
    log = MetricsLog(tmp_path / "metrics.csv")
    log.add({"iteration": 10, "epoch": 0, "coco_ap": 0.25, "coco_aps": nan})
    with (tmp_path / "metrics.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["coco_ap"] == "0.25" and row["coco_aps"] == ""
    assert log.series("coco_aps") == ([], [])

    assert eval_line(10, {"coco_ap": 0.25, "coco_aps": nan}) == (
        "eval @ 10: coco_ap 0.2500  coco_aps -"
    )
    result = SimpleNamespace(
        iteration=10,
        total_iterations=10,
        interrupted=False,
        seconds=3.0,
        best_metric=0.25,
        best_iteration=10,
        last_metrics={"coco_ap": 0.25, "coco_aps": nan},
    )
    table = run_summary(tmp_path, result, 4, log, "coco_ap", [])
    console = Console(file=io.StringIO(), width=120)
    console.print(table)
    text = console.file.getvalue()
    assert "nan" not in text
    (line,) = [ln for ln in text.splitlines() if "last coco_aps" in ln]
    assert line.split("│")[2].strip() == "-"
