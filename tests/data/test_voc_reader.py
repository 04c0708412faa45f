"""The VOC reader and the shared validation rules, on tiny data sets written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssdcli.data.prepare.manifest import read_dataset
from ssdcli.data.readers.voc import read_voc
from ssdcli.errors import DataError


def _kinds(manifest) -> list[str]:
    return sorted(p.kind for p in manifest.problems)


def test_devkit_coordinates_minus_one_and_flags(tmp_path: Path, make_voc) -> None:
    root = make_voc(
        tmp_path / "voc",
        {"a": ((48, 64), [("dog", (1, 2, 30, 40), 0), ("cat", (10, 11, 64, 48), 1)], (48, 64))},
        {"trainval": ["a"]},
    )
    manifest = read_voc(root)
    assert manifest.class_names == ["cat", "dog"]  # discovered, sorted
    record = manifest.records[0]
    np.testing.assert_array_equal(record.boxes_xyxy, [[0, 1, 29, 39], [9, 10, 63, 47]])
    np.testing.assert_array_equal(record.labels, [1, 0])
    np.testing.assert_array_equal(record.difficult, [False, True])
    assert record.size_hw == (48, 64)
    assert manifest.problems == []
    assert manifest.splits == {"trainval": [0]}


def test_every_problem_class_is_reported(tmp_path: Path, make_voc) -> None:
    images = {
        "clean": ((48, 64), [("dog", (5, 5, 20, 20), 0)], (48, 64)),
        "missing": ((48, 64), [("dog", (5, 5, 20, 20), 0)], None),
        "mismatch": ((50, 70), [("dog", (5, 5, 20, 20), 0)], (48, 64)),
        "outside": ((48, 64), [("dog", (-4, 5, 80, 20), 0), ("dog", (70, 5, 90, 20), 0)], (48, 64)),
        "flat": ((48, 64), [("dog", (10, 10, 10, 10), 0), ("dog", (20, 10, 12, 30), 0)], (48, 64)),
        "alien": ((48, 64), [("unicorn", (5, 5, 20, 20), 0), ("dog", (5, 5, 20, 20), 0)], (48, 64)),
        "twice": (
            (48, 64),
            [
                ("dog", (5, 5, 20, 20), 0),
                ("dog", (5, 5, 20, 20), 0),
                ("dog", (5, 5, 20, 21), 0),
                ("cat", (5, 5, 20, 20), 0),
            ],
            (48, 64),
        ),
    }
    root = make_voc(tmp_path / "voc", images, {"train": [*images, "no_xml"]})
    (root / "JPEGImages" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "Annotations" / "broken.xml").write_text(
        (root / "Annotations" / "clean.xml").read_text().replace("clean.jpg", "broken.jpg")
    )
    (root / "ImageSets" / "Main" / "train.txt").write_text(
        "".join(f"{i}\n" for i in [*images, "no_xml", "broken"])
    )
    manifest = read_voc(root, class_names=["dog", "cat"])
    assert _kinds(manifest) == sorted(
        [
            "missing_image",
            "unreadable_image",
            "missing_annotation",
            "size_mismatch",
            "out_of_bounds",
            "out_of_bounds",
            "zero_area",
            "zero_area",
            "unknown_class",
            "duplicate",
            "near_duplicate",
        ]
    )
    by_id = {r.image_id: r for r in manifest.records}
    assert set(by_id) == {"clean", "mismatch", "outside", "flat", "alien", "twice"}
    assert by_id["mismatch"].size_hw == (48, 64)  # the real size wins
    # (-4, 5, 80, 20) devkit -> (-5, 4, 79, 19) -> clipped to the 64x48 image; (70..) dropped.
    np.testing.assert_array_equal(by_id["outside"].boxes_xyxy, [[0, 4, 64, 19]])
    assert len(by_id["flat"].labels) == 0
    np.testing.assert_array_equal(by_id["alien"].labels, [0])
    np.testing.assert_array_equal(by_id["twice"].labels, [0, 0, 1])  # copy dropped, near kept
    messages = {p.kind: p for p in manifest.problems}
    assert messages["zero_area"].file.endswith("flat.xml")
    assert "line" in messages["zero_area"].message
    assert messages["missing_image"].file.endswith("missing.jpg")
    assert messages["unknown_class"].file.endswith("alien.xml")


def test_malformed_xml_names_file_and_line(tmp_path: Path, make_voc) -> None:
    root = make_voc(tmp_path / "voc", {"a": ((48, 64), [], (48, 64))}, {"train": ["a"]})
    (root / "Annotations" / "a.xml").write_text("<annotation>\n  <filename>a.jpg\n</annotation>\n")
    with pytest.raises(DataError, match=r"a\.xml:3: malformed XML"):
        read_voc(root)


def test_non_numeric_coordinate_names_file_and_line(tmp_path: Path, make_voc) -> None:
    root = make_voc(
        tmp_path / "voc", {"a": ((48, 64), [("dog", (1, 2, 3, 4), 0)], (48, 64))}, {"train": ["a"]}
    )
    xml = root / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<ymax>4</ymax>", "<ymax>four</ymax>"))
    with pytest.raises(DataError, match=r"a\.xml:\d+: <ymax> is 'four'"):
        read_voc(root)


def test_years_class_lists_and_split_selection(tmp_path: Path, make_voc) -> None:
    devkit = tmp_path / "VOCdevkit"
    make_voc(
        devkit / "VOC2007",
        {"1": ((48, 64), [("dog", (1, 1, 9, 9), 0)], (48, 64))},
        {"trainval": ["1"], "test": ["1"]},
    )
    make_voc(
        devkit / "VOC2012",
        {"1": ((48, 64), [("cat", (1, 1, 9, 9), 0)], (48, 64))},
        {"trainval": ["1"]},
    )
    (devkit / "VOC2007" / "ImageSets" / "Main" / "dog_trainval.txt").write_text("1  1\n")
    manifest = read_voc(tmp_path, splits=["trainval"])
    assert [r.image_id for r in manifest.records] == ["VOC2007/1", "VOC2012/1"]
    assert manifest.splits == {"trainval": [0, 1]}
    with pytest.raises(DataError, match="not found"):
        read_voc(tmp_path, splits=["val"])


def test_trainval_derived_from_train_and_val(tmp_path: Path, make_voc) -> None:
    images = {k: ((48, 64), [("dog", (1, 1, 9, 9), 0)], (48, 64)) for k in ("a", "b")}
    root = make_voc(tmp_path / "voc", images, {"train": ["a"], "val": ["b"]})
    assert read_dataset(root, "voc").splits["trainval"] == [0, 1]


def test_no_voc_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no VOC data set"):
        read_voc(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_voc(tmp_path / "nope")


def test_bccd_finds_the_two_point_boxes_and_seven_near_duplicates(bccd_root: Path) -> None:
    manifest = read_voc(bccd_root)
    zero = [p for p in manifest.problems if p.kind == "zero_area"]
    assert sorted(Path(p.file).stem for p in zero) == ["BloodImage_00338", "BloodImage_00343"]
    assert "(504, 337, 504, 337)" in zero[0].message
    near = [p for p in manifest.problems if p.kind == "near_duplicate"]
    assert len(near) == 7
    assert len(manifest.problems) == 9
    assert manifest.class_names == ["Platelets", "RBC", "WBC"]
    assert len(manifest.records) == 364
    assert sum(len(r.labels) for r in manifest.records) == 4888 - 2
    assert {k: len(v) for k, v in manifest.splits.items()} == {
        "train": 205,
        "val": 87,
        "trainval": 292,
        "test": 72,
    }
