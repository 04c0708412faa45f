"""The reader registry: one table that layout detection, ``open_dataset`` and the manifest use.

A toy format (a ``boxes.csv`` beside the images) is added the way docs/architecture.md says a
format is added: one reader (written here, as its module would be) and one registration, with
no other module touched; every way into a data set then finds and reads it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ssdcli.data import build_manifest, open_dataset, read_dataset
from ssdcli.data.images import image_size_hw
from ssdcli.data.prepare.layout import detect_layout
from ssdcli.data.readers.base import Reader, only_splits
from ssdcli.data.readers.registry import formats, readers, register, unregister
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError, UsageError

# --- the toy reader: what a module ssdcli/data/readers/csvtable.py would hold -----------------


def read_csv_table(
    source: Path,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    decode: bool = False,
    images_dir: Path | None = None,
) -> Manifest:
    """``boxes.csv`` rows ``image,x0,y0,x1,y1,class`` (xyxy pixels); images beside it."""
    rows: dict[str, list[list[str]]] = {}
    with (source / "boxes.csv").open(newline="") as file:
        for row in csv.reader(file):
            rows.setdefault(row[0], []).append(row[1:])
    names = list(class_names or sorted({r[4] for image in rows.values() for r in image}))
    folder = images_dir or source
    records = [
        Record.make(
            Path(image).stem,
            folder / image,
            image_size_hw(folder / image),
            [[float(v) for v in r[:4]] for r in boxes],
            [names.index(r[4]) for r in boxes],
        )
        for image, boxes in sorted(rows.items())
    ]
    splits_found = {"all": list(range(len(records)))}
    manifest = Manifest(names, records, splits_found, source=str(source), format="csv")
    return only_splits(manifest, splits)


CSV_READER = Reader(
    name="csv-table",
    formats=("csv",),
    looks_like="boxes.csv beside the images",
    matches=lambda path: (path / "boxes.csv").is_file(),
    read=read_csv_table,
)

# -----------------------------------------------------------------------------------------------


@pytest.fixture
def csv_format() -> Iterator[Reader]:
    """The toy reader registered (before the manifest reader, as a data set's own files win),
    removed again afterwards so the registry is as it was for the other tests."""
    register(CSV_READER, before="manifest")
    yield CSV_READER
    unregister(CSV_READER.name)


@pytest.fixture
def csv_folder(tmp_path: Path, write_image) -> Path:
    root = tmp_path / "table"
    for k in range(5):
        write_image(root / f"img{k}.jpg", 48, 64, seed=k)
    lines = [f"img{k}.jpg,{2 + k},4,{30 + k},40,{'cat' if k % 2 else 'dog'}" for k in range(5)]
    lines.append("img0.jpg,10,10,20,20,cat")
    (root / "boxes.csv").write_text("\n".join(lines) + "\n")
    return root


def test_the_registry_is_ordered_and_names_the_formats() -> None:
    names = [reader.name for reader in readers()]
    assert names == [
        "yolo-yaml",
        "voc-devkit",
        "split-folders",
        "coco",
        "voc-flat",
        "yolo-folders",
        "manifest",
    ]
    assert formats() == ("coco", "voc", "yolo")


def test_without_the_reader_the_toy_format_is_unknown(csv_folder: Path) -> None:
    with pytest.raises(UsageError, match="5 images found but no annotations"):
        open_dataset(csv_folder)
    with pytest.raises(UsageError, match="--format 'csv'"):
        open_dataset(csv_folder, format="csv")


def test_layout_detection_finds_a_registered_reader(csv_format: Reader, csv_folder: Path) -> None:
    assert detect_layout(csv_folder) is csv_format
    assert detect_layout(csv_folder, "csv") is csv_format
    assert "csv" in formats()
    empty = csv_folder.parent / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no csv data set .*: looked for boxes.csv beside"):
        detect_layout(empty, "csv")


def test_open_dataset_reads_and_splits_a_registered_format(
    csv_format: Reader, csv_folder: Path
) -> None:
    manifest = open_dataset(csv_folder, seed=3)
    assert manifest.format == "csv"
    assert manifest.class_names == ["cat", "dog"]
    assert [r.image_id for r in manifest.records] == [f"img{k}" for k in range(5)]
    first = manifest.records[0]
    np.testing.assert_array_equal(first.boxes_xyxy, np.float32([[2, 4, 30, 40], [10, 10, 20, 20]]))
    np.testing.assert_array_equal(first.labels, [1, 0])
    # no splits of its own: train/val/test made as for every format (1 val, 1 test of 5 images)
    assert sorted(manifest.splits) == ["test", "train", "trainval", "val"]
    assert len(manifest.splits["val"]) == 1 and len(manifest.splits["test"]) == 1
    only_val = open_dataset(csv_folder, format="csv", splits=["val"], seed=3)
    assert list(only_val.splits) == ["val"] and len(only_val.records) == 1


def test_the_manifest_path_reads_a_registered_format(csv_format: Reader, csv_folder: Path) -> None:
    direct = read_dataset(csv_folder, "csv")
    assert list(direct.splits) == ["all"] and len(direct.records) == 5
    cfg = SimpleNamespace(manifest=None, format="csv", root=str(csv_folder), class_names=None)
    built = build_manifest(cfg, generate=False)
    assert built.format == "csv" and len(built.records) == 5
    assert built.splits == open_dataset(csv_folder).splits


def test_register_refuses_a_taken_name_and_an_unknown_place(csv_format: Reader) -> None:
    with pytest.raises(UsageError, match="registered already"):
        register(csv_format)
    with pytest.raises(UsageError, match="no data reader named 'nope'"):
        register(Reader("other", ("x",), "x", lambda path: False, read_csv_table), before="nope")


def test_read_dataset_keeps_its_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data format 'csv'"):
        read_dataset(tmp_path, "csv")
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nope", "voc")
