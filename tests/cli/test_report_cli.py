"""``ssd eval CKPT --report``: writes report.html beside the checkpoint and names its threshold."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()


def _manifest(folder: Path) -> Path:
    from ssdcli.data.records import Manifest, Record

    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
        records.append(Record.make(str(i), path, (80, 100), [[5, 5, 50, 60]], [i % 2]))
    manifest = Manifest(["cat", "dog"], records, {"test": [0, 1, 2]}, None, str(folder), "voc")
    return manifest.save(folder / "manifest.json")


def test_eval_report_writes_report_html(tmp_path: Path, save_tiny_checkpoint) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path / "run" / "best.pt", ["cat", "dog"], 0)
    args = ["eval", str(checkpoint), "--data", str(_manifest(tmp_path)), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--report", "--report-threshold", "0.05"])
    assert result.exit_code == 0, result.output
    report = tmp_path / "run" / "report.html"
    assert report.is_file()
    assert "report score threshold 0.0500" in result.output
    assert f"wrote {report}" in result.output.replace("\n", "")
    text = report.read_text(encoding="utf-8")
    assert "Errors at score threshold 0.0500" in text and "Recipe" in text
