"""Cores-used accounting: CPU seconds of this process and its children over wall seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ssdcli.train.cores import CpuClock, cpu_seconds
from ssdcli.train.runlog import MetricsLog, run_summary

BUSY = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


def test_a_live_child_counts_and_keeps_counting_after_it_ends() -> None:
    clock = CpuClock()
    child = subprocess.Popen([sys.executable, "-c", BUSY + "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while clock.cpu() < 0.3 and time.monotonic() < deadline:  # parent sleeps, child works
            time.sleep(0.05)
        assert clock.cpu() >= 0.3  # read from /proc while the child lives
    finally:
        child.kill()
        child.wait()
    assert clock.cpu() >= 0.3  # and from RUSAGE_CHILDREN once it was waited for


def test_own_work_counts() -> None:
    clock = CpuClock()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert clock.cpu() >= 0.15
    assert 0 < clock.cores() <= 1.5  # one busy thread
    assert cpu_seconds() > 0


def test_summary_prints_cores_busy(tmp_path: Path) -> None:
    result = SimpleNamespace(
        iteration=10, total_iterations=10, interrupted=False, seconds=5.0, best_metric=None,
        best_iteration=None, last_metrics={}, cores_busy=1.87,
    )  # fmt: skip
    table = run_summary(tmp_path, result, 8, MetricsLog(tmp_path / "m.csv"), "voc_map50", [])
    rows = dict(zip(table.columns[0]._cells, table.columns[1]._cells, strict=True))
    assert rows["images/s"] == "16.0"
    assert rows["CPU cores busy"].startswith("1.87 of ")
