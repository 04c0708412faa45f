"""The manifest file (atomic, idempotent JSON) and building a manifest from a recipe's data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ssdcli.data.prepare.manifest import build_manifest, read_dataset, relabel
from ssdcli.data.records import Manifest, Problem, Record
from ssdcli.errors import DataError


def _manifest(source: Path) -> Manifest:
    records = [
        Record.make("a", source / "a.jpg", (48, 64), [[0.1, 2, 30.25, 40]], [1], [True], None),
        Record.make("b", "/elsewhere/b.jpg", (10, 20)),
    ]
    problems = [Problem("zero_area", str(source / "a.xml"), "line 3 box (1, 1, 1, 1) dog")]
    return Manifest(
        ["cat", "dog"],
        records,
        {"train": [0, 1], "test": [1]},
        [3, 8],
        str(source),
        "coco",
        problems,
    )


def test_save_load_round_trip_and_relative_paths(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    path = manifest.save(tmp_path / "out" / "manifest.json")
    text = path.read_text()
    assert '"path":"a.jpg"' in text and '"path":"/elsewhere/b.jpg"' in text
    loaded = Manifest.load(tmp_path / "out")  # a folder means its manifest.json
    assert loaded.class_names == ["cat", "dog"]
    assert loaded.category_ids == [3, 8]
    assert loaded.splits == {"test": [1], "train": [0, 1]}
    assert loaded.problems == manifest.problems
    first = loaded.records[0]
    assert first.image_path == str(tmp_path / "a.jpg")
    assert first.boxes_xyxy.dtype == np.float32 and first.labels.dtype == np.int64
    np.testing.assert_array_equal(first.boxes_xyxy, np.float32([[0.1, 2, 30.25, 40]]))
    np.testing.assert_array_equal(first.difficult, [True])
    assert loaded.records[1].boxes_xyxy.shape == (0, 4)


def test_save_is_byte_identical_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    _manifest(tmp_path).save(path)
    first = path.read_bytes()
    Manifest.load(path).save(path)
    assert path.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Manifest.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n "records": [\n')
    with pytest.raises(DataError, match=r"bad\.json:\d+: malformed manifest"):
        Manifest.load(bad)
    bad.write_text('{"records": []}')
    with pytest.raises(DataError, match="not a manifest"):
        Manifest.load(bad)


def test_split_indices_names_known_splits(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="splits: test, train"):
        _manifest(tmp_path).split_indices("val")


def _data_cfg(**values) -> SimpleNamespace:
    defaults = dict(
        format="voc",
        root="",
        manifest=None,
        class_names=None,
        synthetic_images=20,
        synthetic_size=64,
        synthetic_seed=3,
    )
    return SimpleNamespace(**{**defaults, **values})


def test_build_manifest_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.root /nonexistent/voc does not exist"):
        build_manifest(_data_cfg(root="/nonexistent/voc"))
    with pytest.raises(DataError, match="nope.json does not exist"):
        build_manifest(_data_cfg(manifest=str(tmp_path / "nope.json")))


def test_build_manifest_generates_synthetic_once(tmp_path: Path) -> None:
    cfg = _data_cfg(format="synthetic", root=str(tmp_path / "shapes"))
    first = build_manifest(cfg)
    assert first.format == "synthetic" and len(first.records) == 20
    assert sorted(first.splits) == ["test", "train", "trainval", "val"]
    stamp = (tmp_path / "shapes" / "manifest.json").stat().st_mtime_ns
    second = build_manifest(cfg)
    assert (tmp_path / "shapes" / "manifest.json").stat().st_mtime_ns == stamp
    assert [r.image_id for r in second.records] == [r.image_id for r in first.records]
    with pytest.raises(DataError, match="does not hold the synthetic set"):
        build_manifest(
            _data_cfg(format="synthetic", root=str(tmp_path / "shapes"), synthetic_seed=4)
        )


def test_build_manifest_relabels_to_recipe_class_names(tmp_path: Path) -> None:
    path = _manifest(tmp_path).save(tmp_path / "m.json")
    manifest = build_manifest(_data_cfg(manifest=str(path), class_names=["dog"]))
    assert manifest.class_names == ["dog"] and manifest.category_ids == [8]
    np.testing.assert_array_equal(manifest.records[0].labels, [0])
    with pytest.raises(DataError, match=r"\['horse'\] are not in the data set"):
        relabel(manifest, ["horse"])


def test_unknown_format_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data format"):
        read_dataset(tmp_path, "kitti")
