"""Output piped into a reader that quits after one line: the command finishes its files, exits
with its usual status and prints no traceback (a real subprocess and a real pipe)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssdcli.cli.pipes import PipeSafeStream

REPO = Path(__file__).resolve().parents[2]


def _first_line_then_close(
    args: list[str], cwd: Path, lines: int = 1, close_stderr: bool = False
) -> tuple[int, str, str]:
    """Run ``python -m ssdcli ARGS | head -LINES``: read ``lines`` lines of stdout (0: none, as
    ``| true`` does), close the pipe, wait.

    Args:
        close_stderr: close the stderr pipe right away too (stderr is then not read).

    Returns:
        The exit status, the lines read and everything read from stderr.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ssdcli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    if close_stderr:
        process.stderr.close()
    line = "".join(process.stdout.readline().decode() for _ in range(lines))
    process.stdout.close()  # the reader is gone: the next write gets EPIPE
    stderr = "" if close_stderr else process.stderr.read().decode()
    return process.wait(timeout=300), line, stderr


def test_inspect_priors_into_head_writes_the_picture(tmp_path: Path) -> None:
    status, line, stderr = _first_line_then_close(
        ["inspect-priors", "voc300", "--out", "p.png"], tmp_path
    )
    assert line.strip()  # the reader did get a line before leaving
    assert status == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.mark.parametrize("close_stderr", [False, True])
def test_detect_into_a_closed_pipe_writes_all_outputs(
    tmp_path: Path, save_tiny_checkpoint, close_stderr: bool
) -> None:
    # detect prints its results to stdout after the files are written; to meet the closed pipe
    # during the work, the reader leaves before the first line (``| true``), with stderr (the
    # progress and tables) closed as well in one case.
    model = save_tiny_checkpoint(tmp_path / "best.pt", ["circle", "square"], 0)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    names = [f"im{i}.jpg" for i in range(6)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (90, 120, 3), np.uint8)).save(photos / name)
    args = ["detect", "photos", "--model", str(model), "--out", "o", "--threshold", "0.2"]
    status, _, stderr = _first_line_then_close(
        [*args, "--save-json", "c.json"], tmp_path, lines=0, close_stderr=close_stderr
    )
    assert status == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.jpg")) == names
    lines = (tmp_path / "o" / "detections.jsonl").read_text().splitlines()
    assert len(lines) == len(names)
    assert isinstance(json.loads((tmp_path / "c.json").read_text()), list)


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise OSError("no descriptor")  # silence() then only stops writing


def test_a_broken_stream_becomes_a_no_op() -> None:
    stream = PipeSafeStream(_ClosedPipe())
    assert stream.write("lost\n") == 5 and stream.broken
    stream.write("and more\n")  # no exception
    stream.flush()


def test_other_errors_still_raise() -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        PipeSafeStream(Full()).write("x")
