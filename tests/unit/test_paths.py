"""The path helpers: what a path is, and the one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdcli.errors import CheckpointError, UsageError
from ssdcli.paths import existing_dir, existing_file, output_dir, output_file, what_is


def test_what_is(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert what_is(tmp_path) == "is a directory"
    assert what_is(tmp_path / "f") == "is a file"
    assert what_is(tmp_path / "nope") == "does not exist"
    (tmp_path / "dangling").symlink_to(tmp_path / "nope")
    assert what_is(tmp_path / "dangling") == "is not a regular file"


def test_existing_file_and_dir(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert existing_file(tmp_path / "f", "--x", "a file") == tmp_path / "f"
    assert existing_dir(tmp_path, "--x", "a folder") == tmp_path
    with pytest.raises(UsageError, match=rf"^--x {tmp_path}: is a directory; expected a file$"):
        existing_file(tmp_path, "--x", "a file")
    with pytest.raises(CheckpointError, match="f: is a file; expected a folder"):
        existing_dir(tmp_path / "f", "--x", "a folder", error=CheckpointError)


def test_outputs(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert output_file(tmp_path / "new" / "a.png", "--out", "a PNG") == tmp_path / "new" / "a.png"
    assert output_dir(tmp_path / "new", "--out", "a folder") == tmp_path / "new"
    with pytest.raises(UsageError, match="is a directory; expected a PNG"):
        output_file(tmp_path, "--out", "a PNG")
    with pytest.raises(UsageError, match=r"its parent .*f is a file; expected a PNG"):
        output_file(tmp_path / "f" / "a.png", "--out", "a PNG")
    with pytest.raises(UsageError, match="is a file; expected a folder"):
        output_dir(tmp_path / "f", "--out", "a folder")
