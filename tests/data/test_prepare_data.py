"""`ssd prepare-data`: report, manifest, --strict, --preview, synthetic, BCCD."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.data.records import Manifest

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["prepare-data", *args], catch_exceptions=False)


def test_synthetic_then_voc_reports_no_problems(tmp_path: Path) -> None:
    made = _run("synthetic", "--out", str(tmp_path / "s"), "--images", "30", "--size", "96")
    assert made.exit_code == 0, made.output
    assert "no problems found" in made.output
    again = _run(str(tmp_path / "s"), "--format", "voc", "--out", str(tmp_path / "m"), "--strict")
    assert again.exit_code == 0, again.output
    assert "no problems found" in again.output and "30 images" in again.output
    manifest = Manifest.load(tmp_path / "m" / "manifest.json")
    assert manifest.format == "voc" and len(manifest.records) == 30


def test_rerun_writes_a_byte_identical_manifest(tmp_path: Path, make_voc) -> None:
    root = make_voc(
        tmp_path / "voc", {"a": ((48, 64), [("dog", (1, 1, 9, 9), 0)], (48, 64))}, {"train": ["a"]}
    )
    assert _run(str(root), "--out", str(tmp_path / "m")).exit_code == 0  # format detected
    first = (tmp_path / "m" / "manifest.json").read_bytes()
    assert _run(str(root), "--out", str(tmp_path / "m")).exit_code == 0
    assert (tmp_path / "m" / "manifest.json").read_bytes() == first


def test_strict_exits_1_on_problems_and_writes_nothing(tmp_path: Path, make_voc) -> None:
    images = {"a": ((48, 64), [("dog", (5, 5, 5, 5), 0), ("dog", (1, 1, 9, 9), 0)], (48, 64))}
    root = make_voc(tmp_path / "voc", images, {"train": ["a"]})
    strict = runner.invoke(
        app, ["prepare-data", str(root), "--out", str(tmp_path / "m"), "--strict"]
    )
    assert strict.exit_code == 1
    assert "zero_area" in strict.output and "a.xml" in strict.output
    assert not (tmp_path / "m").exists()
    lenient = _run(str(root), "--format", "voc", "--out", str(tmp_path / "m"))
    assert lenient.exit_code == 0
    assert [p.kind for p in Manifest.load(tmp_path / "m").problems] == ["zero_area"]


def test_preview_writes_a_grid(tmp_path: Path) -> None:
    result = _run(
        "synthetic",
        "--out",
        str(tmp_path / "s"),
        "--images",
        "20",
        "--size",
        "64",
        "--preview",
        str(tmp_path / "grid.png"),
    )
    assert result.exit_code == 0, result.output
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid.shape == (4 * 304 + 4, 4 * 304 + 4, 3)  # 16 samples of 300x300, 4 px gaps


def test_unknown_layout_and_bad_format_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["prepare-data", str(tmp_path / "empty"), "--out", "x"])
    assert result.exit_code == 2 and "--format" in result.output
    result = runner.invoke(app, ["prepare-data", str(tmp_path), "-f", "kitti", "--out", "x"])
    assert result.exit_code == 2


def test_bccd_report(tmp_path: Path, bccd_root: Path) -> None:
    result = _run(str(bccd_root), "--format", "voc", "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert "364 images, 4886 objects" in result.output
    assert "BloodImage_00338.xml" in result.output and "BloodImage_00343.xml" in result.output
    kinds = [p.kind for p in Manifest.load(tmp_path / "m").problems]
    assert kinds.count("zero_area") == 2 and kinds.count("near_duplicate") == 7


def test_command_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ssdcli.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['prepare-data', 'synthetic', '--out', r'{tmp_path}/s', "
        "'--images', '4', '--size', '64'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")
