"""Stretch or letterbox for photos of mixed orientation: the measurement behind `--data`'s default.

Writes a copy of a VOC data set (default: BCCD) into a temporary folder with every second image
turned 90 degrees (portrait), boxes turned with it, as a flat VOC folder with no splits, then
trains the same recipe twice with `ssd train --data` (model.resize stretch, then letterbox) and
evaluates both on the same test split. Prints one row per mode: VOC area / VOC07 mAP@0.5, COCO
AP and the training wall time.

    .venv/bin/python benchmarks/resize_modes.py [--voc ../shared/data/bccd] [--iterations 1500]
        [--recipe photos_tiny] [--set KEY=VALUE ...]

Both runs see the same splits (same seed) and the same number of iterations; on a shared machine
compare the accuracy columns, not the times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]


def write_mixed_copy(voc_root: Path, out: Path) -> int:
    """Flat VOC copy of ``voc_root`` with every second image rotated 90 degrees clockwise."""
    out.mkdir(parents=True)
    annotations = sorted((voc_root / "Annotations").glob("*.xml"))
    for i, xml_path in enumerate(annotations):
        tree = ET.parse(xml_path)
        root = tree.getroot()
        name = root.findtext("filename") or f"{xml_path.stem}.jpg"
        image = cv2.imread(str(voc_root / "JPEGImages" / name))
        if image is None:
            continue
        height, width = image.shape[:2]
        if i % 2:  # (x, y) -> (H - 1 - y, x) in pixel indices; devkit boxes are 1-based
            image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
            for box in root.iter("bndbox"):
                x0, y0 = float(box.findtext("xmin")), float(box.findtext("ymin"))
                x1, y1 = float(box.findtext("xmax")), float(box.findtext("ymax"))
                values = {"xmin": height + 1 - y1, "ymin": x0, "xmax": height + 1 - y0, "ymax": x1}
                for key, value in values.items():
                    box.find(key).text = str(value)
            size = root.find("size")
            size.find("width").text, size.find("height").text = str(height), str(width)
        cv2.imwrite(str(out / name), image)
        tree.write(out / xml_path.name)
    return len(annotations)


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ssdcli", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"ssd {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc", type=Path, default=REPO.parent / "shared" / "data" / "bccd")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--recipe", default="photos_tiny")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssd-resize-") as tmp:
        work = Path(tmp)
        count = write_mixed_copy(args.voc.resolve(), work / "mixed")
        print(f"{count} images, every second one turned to portrait: {work / 'mixed'}")
        rows = []
        for mode in ("stretch", "letterbox"):
            sets = [f"model.resize={mode}", f"train.iterations={args.iterations}", *args.sets]
            start = time.perf_counter()
            run(
                ["train", args.recipe, "--data", str(work / "mixed"), "--name", mode]
                + [x for s in sets for x in ("--set", s)],
                work,
            )
            minutes = (time.perf_counter() - start) / 60
            metrics = work / f"{mode}.json"
            run(["eval", f"runs/{mode}/best.pt", "--metric", "all", "--json", str(metrics)], work)
            found = json.loads(metrics.read_text())["metrics"]
            rows.append((mode, found, minutes))
        print(f"{'resize':<10} {'VOC area':>9} {'VOC07':>7} {'COCO AP':>8} {'minutes':>8}")
        for mode, found, minutes in rows:
            print(
                f"{mode:<10} {found['voc_map50']:>9.3f} {found['voc07_map50']:>7.3f} "
                f"{found['coco_ap']:>8.3f} {minutes:>8.1f}"
            )


if __name__ == "__main__":
    main()
