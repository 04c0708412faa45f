"""``atomic_path``: the target is the old file or the new one, never a half-written one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdcli.atomic import atomic_file, atomic_path, scratch_path, write_text_atomic


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "metrics.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_an_error_while_writing_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the ne")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_group_is_renamed_together_and_removed_together(tmp_path: Path) -> None:
    def pair(path: Path) -> list[Path]:  # an OpenVINO IR: the .bin follows from the .xml
        return [path, path.with_suffix(".bin")]

    target = tmp_path / "model.xml"
    with atomic_path(target, tag="export", keep_suffix=True, group=pair) as tmp:
        assert tmp.suffix == ".xml" and tmp.name.startswith(".model.xml.export-")
        tmp.write_text("graph")
        tmp.with_suffix(".bin").write_bytes(b"weights")
    assert target.read_text() == "graph" and target.with_suffix(".bin").read_bytes() == b"weights"
    with pytest.raises(RuntimeError), atomic_path(target, keep_suffix=True, group=pair) as tmp:
        tmp.write_text("new graph")
        tmp.with_suffix(".bin").write_bytes(b"new weig")
        raise RuntimeError("conversion failed")
    assert target.read_text() == "graph" and target.with_suffix(".bin").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.xml"]


def test_atomic_file_writes_bytes_and_a_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "run" / "last.pt"
    with atomic_file(target, fsync=True) as file:
        file.write(b"first")
    with pytest.raises(OSError), atomic_file(target, fsync=True) as file:
        file.write(b"half")
        raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.pt"]


def test_a_scratch_file_is_removed_whatever_happens(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with scratch_path(target, "float") as tmp:
        tmp.write_bytes(b"float model")
        assert tmp.parent == tmp_path and tmp.name != target.name
    with pytest.raises(RuntimeError), scratch_path(target, "float") as tmp:
        tmp.write_bytes(b"float model")
        raise RuntimeError("quantization failed")
    assert list(tmp_path.iterdir()) == []
