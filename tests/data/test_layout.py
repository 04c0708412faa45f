"""`open_dataset`: every layout reads to the same records; each exporter quirk; paddy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from layout_builders import (
    CLASSES,
    IMAGES,
    WRITERS,
    coco_json,
    voc_xml,
    write_image,
    write_split_folders,
    write_voc_flat,
    write_yolo_folders,
    write_yolo_yaml,
)

from ssdcli.data.prepare.layout import detect_layout, open_dataset
from ssdcli.data.records import Manifest
from ssdcli.errors import DataError, UsageError

PADDY = Path(__file__).resolve().parents[3] / "shared" / "data" / "paddy"


def _by_stem(manifest: Manifest) -> dict[str, tuple]:
    """Image stem -> (size, sorted (class, box)) : what every layout must agree on."""
    found = {}
    for record in manifest.records:
        objects = sorted(
            (manifest.class_names[int(label)], tuple(np.round(box, 3)))
            for box, label in zip(record.boxes_xyxy, record.labels, strict=True)
        )
        found[Path(record.image_path).stem] = (record.size_hw, objects)
    return found


EXPECTED = {
    stem: ((h, w), sorted((name, tuple(float(v) for v in box)) for name, box in objects))
    for stem, (h, w, objects) in IMAGES.items()
}


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_every_layout_reads_to_the_same_records(tmp_path: Path, layout: str) -> None:
    manifest = open_dataset(WRITERS[layout](tmp_path / layout))
    assert manifest.class_names == CLASSES
    assert _by_stem(manifest) == EXPECTED
    assert not manifest.problems
    assert "train" in manifest.splits
    assert manifest.resolve_split("val") is not None  # val, or valid where the data says so
    assert len({r.image_id for r in manifest.records}) == len(manifest.records)


def test_split_folders_keep_their_names_and_valid_serves_as_val(tmp_path: Path) -> None:
    manifest = open_dataset(write_split_folders(tmp_path / "d", "coco"))
    assert set(manifest.splits) == {"train", "valid", "test", "trainval"}
    assert manifest.split_indices("val") == manifest.splits["valid"]
    assert sorted(manifest.splits["trainval"]) == sorted(
        manifest.splits["train"] + manifest.splits["valid"]
    )
    assert [r.image_id for r in manifest.records] == ["test/0", "train/0", "valid/0"]
    assert any("supercategory" in note and "'rows'" in note for note in manifest.notes)
    assert manifest.category_ids == [1, 2]


def test_a_folder_without_splits_gets_train_val_test(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    stems = [f"img{i}" for i in range(20)]
    for i, stem in enumerate(stems):
        write_image(root / f"{stem}.JPG", 32, 40, seed=i)  # upper-case suffix, found by stem
        (root / f"{stem}.xml").write_text(voc_xml("", 32, 40, [("cat", (1, 1, 9, 9))]))
    manifest = open_dataset(root, val=0.2, test=0.1, seed=3)
    assert {k: len(v) for k, v in manifest.splits.items() if k != "trainval"} == {
        "train": 14,
        "val": 4,
        "test": 2,
    }
    assert manifest.split_made == {"val": 0.2, "test": 0.1, "seed": 3, "duplicate_groups": 0}
    assert any("no splits in the data" in note for note in manifest.notes)
    again = open_dataset(root, val=0.2, test=0.1, seed=3)
    assert again.splits == manifest.splits


def test_flat_voc_finds_images_by_filename_or_stem(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    root.mkdir()
    (root / "settings.json").write_text('{"labels": ["cat"]}')  # a tool's file: not COCO
    write_image(root / "images" / "x.png", 30, 40)
    write_image(root / "images" / "y.jpeg", 30, 40, seed=1)
    (root / "annotations").mkdir(parents=True)
    # <filename> names another extension: found by the XML's stem
    (root / "annotations" / "x.xml").write_text(voc_xml("x.jpg", 30, 40, []))
    # <filename> with a folder from the labelling machine: found by its last component
    (root / "annotations" / "y.xml").write_text(voc_xml("C:\\data\\y.jpeg", 30, 40, []))
    manifest = open_dataset(root, splits=None)
    assert sorted(Path(r.image_path).name for r in manifest.records) == ["x.png", "y.jpeg"]
    assert not manifest.problems


def test_zero_and_wrong_sizes_are_reported_with_the_file(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_image(root / "p.jpg", 30, 40)
    write_image(root / "q.jpg", 30, 40, seed=1)
    (root / "p.xml").write_text(voc_xml("p.jpg", 0, 0, [("cat", (1, 1, 9, 9))]))
    (root / "q.xml").write_text(voc_xml("q.jpg", 300, 400, [("cat", (1, 1, 9, 9))]))
    manifest = open_dataset(root)
    assert [r.size_hw for r in manifest.records] == [(30, 40), (30, 40)]
    mismatches = [p for p in manifest.problems if p.kind == "size_mismatch"]
    assert [Path(p.file).name for p in mismatches] == ["p.xml", "q.xml"]
    assert "0x0" in mismatches[0].message and "p.jpg" in mismatches[0].message


def test_odd_images_sizes_come_from_the_files(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "voc"
    root.mkdir()
    cv2_gray = np.full((20, 30), 90, np.uint8)
    Image.fromarray(cv2_gray).save(root / "gray.png")
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(root / "deep.png")  # 16-bit
    Image.new("CMYK", (30, 20), (10, 20, 30, 0)).save(root / "cmyk.jpg")
    rotated = Image.new("RGB", (30, 20), (200, 0, 0))
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown rotated by 90 degrees: 30 high, 20 wide
    rotated.save(root / "turned.jpg", exif=exif)
    sizes = {"gray": (20, 30), "deep": (20, 30), "cmyk": (20, 30), "turned": (30, 20)}
    for stem, (height, width) in sizes.items():
        (root / f"{stem}.xml").write_text(voc_xml("", height, width, [("cat", (1, 1, 9, 9))]))
    manifest = open_dataset(root)
    assert {Path(r.image_path).stem: r.size_hw for r in manifest.records} == sizes
    assert not manifest.problems

    from ssdcli.data.images import read_image_rgb

    for record in manifest.records:
        image = read_image_rgb(record.image_path)
        assert image.shape == (*record.size_hw, 3) and image.dtype == np.uint8


def test_coco_file_names_resolve_against_images_dir(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    root.mkdir()
    (root / "labels.json").write_text(json.dumps(coco_json(list(IMAGES))))
    elsewhere = tmp_path / "pictures"
    for stem, (height, width, _) in IMAGES.items():
        write_image(elsewhere / f"{stem}.jpg", height, width, seed=ord(stem))
    with pytest.raises(DataError, match="missing_image") as nothing_read:  # not an empty manifest
        open_dataset(root / "labels.json", splits=None)
    assert "--images-dir" in str(nothing_read.value)
    manifest = open_dataset(root / "labels.json", images_dir=elsewhere)
    assert _by_stem(manifest) == EXPECTED  # the image without annotations kept as a negative


def test_yolo_yaml_quirks(tmp_path: Path) -> None:
    root = write_yolo_yaml(tmp_path / "y", roboflow=True)
    (root / "data.yaml").write_text(
        "path: .\ntrain: [../train/images]\nval: lists/val.txt\nnc: 3\nnames: {0: cat, 1: dog}\n"
    )
    (root / "lists").mkdir()
    (root / "lists" / "val.txt").write_text("valid/images/b.jpg\n")
    manifest = open_dataset(root)
    assert manifest.class_names == CLASSES
    assert {k: len(v) for k, v in manifest.splits.items()} == {"train": 1, "val": 1, "trainval": 2}
    assert any("'../' dropped" in note for note in manifest.notes)
    assert any("nc is 3" in note for note in manifest.notes)
    assert any("--split val" in note for note in manifest.notes)  # no test: which split eval uses


def test_yolo_folders_without_class_names_ask_for_them(tmp_path: Path) -> None:
    root = write_yolo_folders(tmp_path / "y", with_classes=False)
    with pytest.raises(DataError, match="classes.txt"):
        open_dataset(root)
    manifest = open_dataset(root, class_names=CLASSES)
    assert _by_stem(manifest) == EXPECTED


def test_nothing_fits_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as error:
        open_dataset(tmp_path / "empty")
    for looked in ("data.yaml", "JPEGImages", "valid/", "COCO", "*.xml", "labels/", "--format"):
        assert looked in str(error.value)
    with pytest.raises(UsageError, match="data.yaml"):
        detect_layout(write_voc_flat(tmp_path / "v"), "yolo")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_manifest_and_format_override(tmp_path: Path) -> None:
    root = WRITERS["voc-devkit"](tmp_path / "voc")
    manifest = open_dataset(root, format="voc", splits=["train", "val"])
    assert set(manifest.splits) == {"train", "val"} and len(manifest.records) == 2
    saved = manifest.save(tmp_path / "out" / "manifest.json")
    assert _by_stem(open_dataset(saved)) == _by_stem(manifest)
    assert _by_stem(open_dataset(tmp_path / "out")) == _by_stem(manifest)
    with pytest.raises(DataError, match="split 'nope'"):
        open_dataset(root, splits=["nope"])


@pytest.fixture
def paddy_root() -> Path:
    if not (PADDY / "train" / "_annotations.coco.json").is_file():
        pytest.skip(f"paddy data set not found at {PADDY}")
    return PADDY


def test_paddy_as_exported(paddy_root: Path) -> None:
    manifest = open_dataset(paddy_root)
    assert manifest.format == "coco"
    assert manifest.class_names == ["Bacterial_Blight", "Brown_Spot", "Rice_Blast"]
    assert {k: len(v) for k, v in manifest.splits.items()} == {
        "train": 545,
        "valid": 47,
        "test": 107,
        "trainval": 592,
    }
    assert sum(len(r.labels) for r in manifest.records) == 2690
    parent = [n for n in manifest.notes if "category 0 'a'" in n]
    assert len(parent) == 1 and "not a class" in parent[0]
    assert not manifest.problems


def test_recipe_data_root_reads_any_layout_of_its_format(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ssdcli.data.prepare.manifest import build_manifest

    root = write_split_folders(tmp_path / "d", "coco")
    cfg = SimpleNamespace(format="coco", root=str(root), manifest=None, class_names=["dog", "cat"])
    manifest = build_manifest(cfg)
    assert manifest.class_names == ["dog", "cat"] and manifest.category_ids == [2, 1]
    assert manifest.split_indices("val") == manifest.splits["valid"]
    with pytest.raises(UsageError, match="data.format"):
        build_manifest(SimpleNamespace(**{**vars(cfg), "format": "yolo"}))


def test_a_manifest_is_read_as_written(tmp_path: Path) -> None:
    root = WRITERS["voc-flat"](tmp_path / "voc")
    manifest = open_dataset(root)
    manifest.splits = {"only": [0, 1, 2]}
    saved = manifest.save(tmp_path / "m" / "manifest.json")
    for source in (saved, saved.parent):
        assert open_dataset(source).splits == {"only": [0, 1, 2]}  # never re-split


def test_images_without_annotations_are_counted_and_named(tmp_path: Path) -> None:
    for i in range(5):
        write_image(tmp_path / "photos" / f"p{i}.jpg", 40, 60, seed=i)
    with pytest.raises(UsageError) as error:
        open_dataset(tmp_path / "photos")
    message = str(error.value)
    assert "5 images found but no annotations" in message
    assert len(message) < 300 and "\n" not in message


def test_a_format_given_is_not_suggested_again(tmp_path: Path) -> None:
    """``--format voc`` on COCO split folders names what the data is and the format to use."""
    root = write_split_folders(tmp_path / "export", "coco")
    with pytest.raises(UsageError) as error:
        open_dataset(root, "voc")
    message = str(error.value)
    assert "add --format voc" not in message
    assert "is not voc data" in message and "--format coco" in message


def test_an_empty_voc_split_list_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = WRITERS["voc-devkit"](tmp_path / "voc")
    listing = next(root.glob("**/ImageSets/Main/train.txt"))
    listing.write_text("")
    with pytest.raises(DataError) as error:
        open_dataset(root, format="voc", splits=["train"])
    assert "split 'train'" in str(error.value) and str(listing) in str(error.value)


def test_a_test_folder_that_data_yaml_does_not_name_is_noted(tmp_path: Path) -> None:
    root = write_yolo_yaml(tmp_path / "y")
    text = (root / "data.yaml").read_text().replace("test: test/images\n", "")
    (root / "data.yaml").write_text(text)
    manifest = open_dataset(root)
    assert "test" not in manifest.splits
    notes = [note for note in manifest.notes if "names no 'test' split" in note]
    assert len(notes) == 1 and "test: test/images" in notes[0]
    complete = open_dataset(write_yolo_yaml(tmp_path / "z"))  # named: nothing to say
    assert not any("names no 'test' split" in note for note in complete.notes)
