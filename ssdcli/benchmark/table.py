"""The benchmark's rows, and their JSON and CSV files (written atomically beside the exports)."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BenchRow:
    """One way of running the model.

    Attributes:
        name: what runs it (``PyTorch eager``, ``torchvision``, ``ONNX Runtime``, ``OpenVINO``,
            ``LiteRT``, ``TorchScript``).
        fmt: ``checkpoint``, ``torchvision`` or an export format.
        precision: ``float32``, ``bf16 autocast``, ``int8``.
        status: ``ok``, or why the row has no figures (``not installed: pip install ...``,
            ``failed: ...``, ``unavailable: ...``).
        path: the file run.
        size_mb: file size in MB (1e6 bytes), companions included.
        load_s: seconds to open the file and make it ready to run.
        ms_per_image: ``"b{batch}/t{threads}"`` -> median milliseconds per image.
        images_per_s: the best of ``1000 / ms_per_image`` over the cells.
        voc_map: VOC area mAP@0.5 on the split; coco_ap: COCO AP@[.5:.95].
        map_diff: ``voc_map`` minus the float32 checkpoint's.
        check: the verification against the checkpoint (or the comparison, for torchvision).
        notes: anything that qualifies the figures (a fixed batch of 1, ...).
    """

    name: str
    fmt: str
    precision: str
    status: str = "ok"
    path: str = ""
    size_mb: float | None = None
    load_s: float | None = None
    ms_per_image: dict[str, float] = field(default_factory=dict)
    images_per_s: float | None = None
    voc_map: float | None = None
    coco_ap: float | None = None
    map_diff: float | None = None
    check: str = ""
    notes: str = ""


@dataclass
class BenchResult:
    """Everything ``ssd benchmark`` measured, with the conditions it measured them in."""

    model: str
    split: str
    images: int
    batches: list[int]
    threads: list[int]
    machine: dict[str, Any]
    rows: list[BenchRow]
    written: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("written")
        return data


def cell(batch: int, threads: int) -> str:
    """The key of one timing: ``"b8/t2"``."""
    return f"b{batch}/t{threads}"


def write_files(result: BenchResult, folder: Path) -> list[Path]:
    """``benchmark.json`` (everything) and ``benchmark.csv`` (one line per row, one column per
    timing cell) in ``folder``."""
    json_path = _write(folder / "benchmark.json", json.dumps(result.to_dict(), indent=2) + "\n")
    cells = [cell(b, t) for t in result.threads for b in result.batches]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    head = ["name", "format", "precision", "status", "size_mb", "load_s"]
    writer.writerow(
        [*head, *(f"ms_per_image_{c}" for c in cells), "images_per_s", "voc_map50", "coco_ap"]
        + ["map_diff", "check", "notes", "path"]
    )
    for row in result.rows:
        writer.writerow(
            [row.name, row.fmt, row.precision, row.status, _num(row.size_mb), _num(row.load_s)]
            + [_num(row.ms_per_image.get(c)) for c in cells]
            + [_num(row.images_per_s), _num(row.voc_map), _num(row.coco_ap), _num(row.map_diff)]
            + [row.check, row.notes, row.path]
        )
    csv_path = _write(folder / "benchmark.csv", buffer.getvalue())
    return [json_path, csv_path]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _write(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path
