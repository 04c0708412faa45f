"""How the data and metric costs grow with the data set: time and peak memory at several sizes.

For each size N (``--sizes``, images; default 10k, 30k and 120k, the last about COCO train2017's
118k images and 860k boxes) a COCO-style set is generated in a temporary folder: an
``instances_train.json`` with N images and about 7.2 boxes per image over 80 categories, and one
small real PNG per image (the same 64 x 48 bytes written N times: ``prepare-data`` opens every
file's header). Then each step runs in a fresh subprocess, which reports its wall time and its
peak resident memory above what it held before the step (``ru_maxrss``):

* ``prepare-data``: ``read_coco`` (JSON parsing, validation, one header read per image) and
  writing ``manifest.json``, as ``ssd prepare-data FILE --out DIR`` does;
* ``dataset``: loading ``manifest.json`` and building the training ``DetectionDataset``;
* ``VOC metric`` and ``COCO metric``: ``voc_pr_curves`` + AP, and pycocotools' ``COCOeval``, on
  N / 24 images (5k at N = 120k) with 100 detections each, jittered copies of the ground truths
  plus random boxes.

Per step the table gives seconds and MiB at each size and the growth factor of each from one
size to the next next to that of N: linear costs grow like N (a quadratic step would grow like
N squared, 16x for 30k -> 120k).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 30000 120000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

NUM_CATEGORIES = 80
BOXES_PER_IMAGE = 7.2  # COCO train2017: 860k boxes / 118k images
IMAGE_WH = (64, 48)
METRIC_DIVISOR = 24  # metric images = N / 24: 5000 at N = 120k
DETECTIONS_PER_IMAGE = 100
STEPS = ("prepare-data", "dataset", "VOC metric", "COCO metric")


def png_bytes(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` (all zero pixels, a few hundred bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    raw = b"".join(b"\x00" + bytes(width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def make_coco(folder: Path, num_images: int, seed: int = 0) -> Path:
    """Writes ``annotations/instances_train.json`` and ``train/*.png``; returns the JSON's path."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width, height = IMAGE_WH
    image_dir = folder / "train"
    image_dir.mkdir(parents=True)
    data = png_bytes(width, height)
    images = []
    for image_id in range(1, num_images + 1):
        name = f"{image_id:012d}.png"
        (image_dir / name).write_bytes(data)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    counts = rng.poisson(BOXES_PER_IMAGE, num_images)
    total = int(counts.sum())
    image_of = np.repeat(np.arange(1, num_images + 1), counts)
    wh = rng.uniform(4, 0.6 * width, (total, 2))
    xy = rng.uniform(0, 1, (total, 2)) * (np.array([width, height]) - wh).clip(min=0)
    wh[:, 1] = np.minimum(wh[:, 1], height - xy[:, 1])
    cats = rng.integers(1, NUM_CATEGORIES + 1, total)
    annotations = [
        {
            "id": k + 1,
            "image_id": int(image_of[k]),
            "category_id": int(cats[k]),
            "bbox": [round(float(v), 2) for v in (*xy[k], *wh[k])],
            "iscrowd": 0,
            "area": float(wh[k, 0] * wh[k, 1]),
        }  # fmt: skip
        for k in range(total)
    ]
    categories = [{"id": c, "name": f"class{c}"} for c in range(1, NUM_CATEGORIES + 1)]
    path = folder / "annotations" / "instances_train.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))  # fmt: skip
    return path


# Each step as a small program run in its own process: (folder, metric image count) -> None.
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
folder, step, metric_images = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import numpy as np
from ssdcli.config import Recipe
from ssdcli.data.readers.coco import read_coco
from ssdcli.data.pipeline.loader import build_dataset
from ssdcli.data.records import Manifest
from ssdcli.metrics.voc import ImageDetections, class_aps, voc_pr_curves
if step.endswith("metric"):
    manifest = Manifest.load(folder / "out" / "manifest.json")
    gts = manifest.records[:metric_images]
    rng = np.random.default_rng(0)
    dets = []
    for gt in gts:
        n = len(gt.boxes_xyxy)
        jitter = gt.boxes_xyxy + rng.normal(0, 1.5, gt.boxes_xyxy.shape).astype(np.float32)
        xy = rng.uniform(0, 40, (100 - n, 2)).astype(np.float32)
        rand = np.concatenate([xy, xy + rng.uniform(4, 24, (100 - n, 2)).astype(np.float32)], 1)
        boxes = np.concatenate([jitter, rand])
        labels = np.concatenate([gt.labels, rng.integers(0, 80, 100 - n)])
        dets.append(ImageDetections(boxes, rng.random(100).astype(np.float32), labels))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if step == "prepare-data":
    manifest = read_coco(folder / "annotations" / "instances_train.json")
    manifest.save(folder / "out" / "manifest.json")
elif step == "dataset":
    manifest = Manifest.load(folder / "out" / "manifest.json")
    recipe = Recipe()
    dataset = build_dataset(manifest, "train", recipe.data, recipe.model.input, (300, 300),
                            train=True)
    assert len(dataset) == len(manifest.records)
elif step == "VOC metric":
    aps = class_aps(voc_pr_curves(gts, dets, 80), use_07_metric=False)
elif step == "COCO metric":
    from ssdcli.metrics.coco import coco_eval
    coco_eval(gts, dets, manifest.class_names)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "mib": max(peak - base, 0) / 1024}))
"""


def run_step(folder: Path, step: str, metric_images: int) -> dict[str, float]:
    """Runs one step in a fresh interpreter; its seconds and peak MiB above its start."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), step, str(metric_images)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 120_000])
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    results: dict[str, list[dict[str, float]]] = {step: [] for step in args.steps}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="ssd-scale-") as tmp:
            folder = Path(tmp)
            make_coco(folder, size)
            metric_images = max(size // METRIC_DIVISOR, 1)
            needs_manifest = any(step != "prepare-data" for step in args.steps)
            if needs_manifest and "prepare-data" not in args.steps:
                run_step(folder, "prepare-data", metric_images)
            for step in args.steps:
                results[step].append(run_step(folder, step, metric_images))
                row = results[step][-1]
                print(f"  N={size}: {step} {row['seconds']:.2f} s, {row['mib']:.0f} MiB",
                      flush=True)  # fmt: skip
    load = os.getloadavg()[0]
    print(f"\nsizes {sizes}; metric images N/{METRIC_DIVISOR}; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    header = " | ".join(f"N={n}" for n in sizes)
    growth = " | ".join(f"{sizes[i - 1]}->{sizes[i]}" for i in range(1, len(sizes)))
    print(f"| step | seconds {header} | MiB {header} | growth s / MiB (N grows) {growth} |")
    print("|---|" + "---|" * (2 * len(sizes) + max(len(sizes) - 1, 1)))
    for step, rows in results.items():
        secs = " | ".join(f"{r['seconds']:.2f}" for r in rows)
        mibs = " | ".join(f"{r['mib']:.0f}" for r in rows)
        factors = " | ".join(
            f"{rows[i]['seconds'] / max(rows[i - 1]['seconds'], 1e-9):.1f}x / "
            f"{rows[i]['mib'] / max(rows[i - 1]['mib'], 1e-9):.1f}x "
            f"({sizes[i] / sizes[i - 1]:.1f}x)"
            for i in range(1, len(rows))
        )
        print(f"| {step} | {secs} | {mibs} | {factors or '-'} |")


if __name__ == "__main__":
    main()
