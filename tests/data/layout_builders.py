"""Writers of one tiny data set in every layout that `open_dataset` reads (tests only).

The data set: three images with known boxes (xyxy pixels, 0-based continuous), one without
objects, written as VOC (devkit, flat, split folders), COCO (one JSON, per split), YOLO (data.yaml,
folders without a YAML, split folders). Every layout must read to the same records.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ["cat", "dog"]
# image stem -> (height, width, [(class, (x0, y0, x1, y1) in pixels)])
IMAGES: dict[str, tuple[int, int, list[tuple[str, tuple[float, float, float, float]]]]] = {
    "a": (48, 64, [("dog", (4, 6, 20, 30)), ("cat", (10, 10, 40, 30))]),
    "b": (40, 50, [("cat", (0, 0, 25, 20))]),
    "c": (32, 32, []),  # a negative: no objects
}
SPLIT_OF = {"a": "train", "b": "valid", "c": "test"}


def write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A smooth random image (a 6x6 grid of random colours, upsampled), unlike any other seed's,
    and whose resized copies keep its perceptual hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(path), image)
    return path


def voc_xml(filename: str, height: int, width: int, objects: list) -> str:
    """A VOC annotation; boxes written in devkit coordinates (pixels + 1)."""
    parts = [
        f"<annotation><filename>{filename}</filename>",
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for name, (x0, y0, x1, y1) in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin>"
            f"<ymin>{y0 + 1}</ymin><xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox></object>"
        )
    return "\n".join([*parts, "</annotation>"]) + "\n"


def yolo_lines(height: int, width: int, objects: list) -> str:
    lines = []
    for name, (x0, y0, x1, y1) in objects:
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        lines.append(f"{CLASSES.index(name)} {cx} {cy} {(x1 - x0) / width} {(y1 - y0) / height}")
    return "".join(line + "\n" for line in lines)


def coco_json(stems: list[str], file_prefix: str = "", first_id: int = 0) -> dict:
    """COCO dict with an unused parent category 0 ("rows") as exporters write it."""
    images, annotations = [], []
    for k, stem in enumerate(stems):
        height, width, objects = IMAGES[stem]
        image_id = first_id + k
        images.append(
            {"id": image_id, "file_name": f"{file_prefix}{stem}.jpg", "width": width,
             "height": height}
        )  # fmt: skip
        for name, (x0, y0, x1, y1) in objects:
            annotations.append(
                {"id": len(annotations) + first_id, "image_id": image_id,
                 "category_id": CLASSES.index(name) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                 "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": 0, "name": "rows", "supercategory": "none"}] + [
        {"id": i + 1, "name": name, "supercategory": "rows"} for i, name in enumerate(CLASSES)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def _images(folder: Path, stems: list[str], suffix: str = ".jpg") -> None:
    for stem in stems:
        height, width, _ = IMAGES[stem]
        write_image(folder / f"{stem}{suffix}", height, width, seed=ord(stem))


def write_voc_devkit(root: Path) -> Path:
    for stem, (height, width, objects) in IMAGES.items():
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(
            voc_xml(f"{stem}.jpg", height, width, objects)
        )
    _images(root / "JPEGImages", list(IMAGES))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for split in ("train", "val", "test"):
        ids = [s for s, name in SPLIT_OF.items() if name.startswith(split[:3])]
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


def write_voc_flat(root: Path, stems: list[str] | None = None, subfolders: bool = False) -> Path:
    stems = stems or list(IMAGES)
    xml_dir, image_dir = (root / "annotations", root / "images") if subfolders else (root, root)
    xml_dir.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        height, width, objects = IMAGES[stem]
        (xml_dir / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", height, width, objects))
    _images(image_dir, stems)
    return root


def write_yolo_split(folder: Path, stems: list[str]) -> None:
    """``folder/images/x.jpg`` + ``folder/labels/x.txt``."""
    _images(folder / "images", stems)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for stem in stems:
        height, width, objects = IMAGES[stem]
        (folder / "labels" / f"{stem}.txt").write_text(yolo_lines(height, width, objects))


def write_split_folders(root: Path, kind: str) -> Path:
    """``root/{train,valid,test}/`` each in ``kind``: voc, coco or yolo."""
    for stem, split in SPLIT_OF.items():
        folder = root / split
        if kind == "voc":
            write_voc_flat(folder, [stem])
        elif kind == "coco":
            _images(folder, [stem])
            data = coco_json([stem])  # ids start at 0 in every split, as exporters write
            (folder / "_annotations.coco.json").write_text(json.dumps(data))
        else:
            write_yolo_split(folder, [stem])
    if kind == "yolo":
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def write_coco_single(root: Path) -> Path:
    """One JSON for all images, ``file_name`` with a subfolder, images in ``images/``."""
    data = coco_json(list(IMAGES), file_prefix="photos/", first_id=1)
    _images(root / "images" / "photos", list(IMAGES))
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_all.json").write_text(json.dumps(data))
    return root


def write_yolo_yaml(root: Path, roboflow: bool = False) -> Path:
    """``data.yaml`` + ``train/images`` etc. (``roboflow``: ``../train/images`` paths)."""
    for stem, split in SPLIT_OF.items():
        write_yolo_split(root / split, [stem])
    prefix = "../" if roboflow else ""
    (root / "data.yaml").write_text(
        f"train: {prefix}train/images\nval: {prefix}valid/images\ntest: {prefix}test/images\n\n"
        f"nc: 2\nnames: {CLASSES}\n"
    )
    return root


def write_yolo_folders(root: Path, with_classes: bool = True) -> Path:
    """``images/{train,val}`` + ``labels/{train,val}`` without a YAML."""
    for stem, split in SPLIT_OF.items():
        name = "val" if split != "train" else "train"
        _images(root / "images" / name, [stem])
        height, width, objects = IMAGES[stem]
        label = root / "labels" / name / f"{stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(yolo_lines(height, width, objects))
    if with_classes:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


WRITERS = {
    "voc-devkit": write_voc_devkit,
    "voc-flat": write_voc_flat,
    "voc-flat-subfolders": lambda root: write_voc_flat(root, subfolders=True),
    "split-voc": lambda root: write_split_folders(root, "voc"),
    "split-coco": lambda root: write_split_folders(root, "coco"),
    "split-yolo": lambda root: write_split_folders(root, "yolo"),
    "coco-single": write_coco_single,
    "yolo-yaml": write_yolo_yaml,
    "yolo-yaml-roboflow": lambda root: write_yolo_yaml(root, roboflow=True),
    "yolo-folders": write_yolo_folders,
}
