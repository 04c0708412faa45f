"""Training-augmentation throughput: ssdcli (uint8, OpenCV/numpy) vs torchvision.transforms.v2.

Both pipelines do the same work per image, in one process and one thread ("per worker"):
read + decode the JPEG, photometric distortion, zoom out (up to 4x, mean fill), SSD IoU crop,
horizontal flip, resize to 300x300, conversion to a normalised float32 CHW tensor.

    .venv/bin/python benchmarks/bench_data.py [--bccd ../shared/data/bccd] [--rounds 3]

Prints images/s (best of the rounds; the pipelines alternate within each round so that a busy
machine slows both alike) and the ratio. Synthetic images are generated into a temp folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.io import decode_jpeg, read_file
from torchvision.transforms import v2

from ssdcli.data.images import read_image_rgb
from ssdcli.data.pipeline.transforms import AugmentSettings, augment_ssd, normalize_image
from ssdcli.data.prepare.synthetic import write_synthetic
from ssdcli.data.readers.voc import read_voc
from ssdcli.data.records import Record

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
SIZE = (300, 300)


def ours(records: list[Record]) -> Callable[[int], object]:
    settings = AugmentSettings.defaults()
    fill = tuple(round(v) for v in MEAN)

    def run(i: int) -> object:
        record = records[i % len(records)]
        image = read_image_rgb(record.image_path)
        out = augment_ssd(
            image, record.boxes_xyxy, SIZE, np.random.default_rng([0, 0, i]), settings, fill
        )
        return torch.from_numpy(normalize_image(out.image, MEAN, STD)), out.boxes_xyxy

    return run


def torchvision_v2(records: list[Record]) -> Callable[[int], object]:
    pipeline = v2.Compose([
        v2.RandomPhotometricDistort(p=0.5),
        v2.RandomZoomOut(fill={tv_tensors.Image: list(MEAN), "others": 0}, side_range=(1.0, 4.0),
                         p=0.5),
        v2.RandomIoUCrop(),
        v2.RandomHorizontalFlip(p=0.5),
        v2.Resize(SIZE),
        v2.SanitizeBoundingBoxes(labels_getter=None),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([m / 255 for m in MEAN], [s / 255 for s in STD]),
    ])  # fmt: skip

    def run(i: int) -> object:
        record = records[i % len(records)]
        image = tv_tensors.Image(decode_jpeg(read_file(record.image_path)))
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(record.boxes_xyxy), format="XYXY", canvas_size=record.size_hw
        )
        return pipeline(image, boxes)

    return run


def decode_only(records: list[Record]) -> Callable[[int], object]:
    return lambda i: read_image_rgb(records[i % len(records)].image_path)


def measure(runs: dict[str, Callable[[int], object]], count: int, rounds: int) -> dict:
    best = dict.fromkeys(runs, 0.0)
    for run in runs.values():  # warm-up (imports, caches, allocator)
        for i in range(10):
            run(i)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for i in range(count):
                run(i)
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def main() -> None:
    default_bccd = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bccd", type=Path, default=default_bccd)
    parser.add_argument("--images", type=int, default=300, help="images per round and set")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sets = {}
    if (args.bccd / "Annotations").is_dir():
        sets["BCCD 640x480 JPEG"] = read_voc(args.bccd).records
    else:
        print(f"BCCD not found at {args.bccd}; synthetic only")
    with tempfile.TemporaryDirectory() as tmp:
        sets["synthetic 300x300 JPEG"] = read_voc(write_synthetic(Path(tmp) / "s", 200)).records
        rows = []
        for name, records in sets.items():
            runs = {
                "decode only": decode_only(records),
                "ssdcli": ours(records),
                "torchvision v2": torchvision_v2(records),
            }
            rows.append((name, measure(runs, args.images, args.rounds)))
    print(f"\nimages/s, 1 process, 1 thread, best of {args.rounds} rounds of {args.images} images")
    print("| images | decode only | ssdcli | torchvision v2 | ssdcli / torchvision |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        ratio = r["ssdcli"] / r["torchvision v2"]
        print(
            f"| {name} | {r['decode only']:.0f} | {r['ssdcli']:.0f} | "
            f"{r['torchvision v2']:.0f} | {ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()
