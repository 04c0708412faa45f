"""Summary statistics of a manifest, for the `ssd prepare-data` report (plain numbers, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssdcli.data.records import Manifest

# COCO size ranges by box area in pixels of the original image.
COCO_SMALL, COCO_MEDIUM = 32**2, 96**2
ASPECT_EDGES = (1 / 3, 1 / 2, 1 / 1.25, 1.25, 2, 3)  # width / height bucket edges
ASPECT_NAMES = ("< 1/3", "1/3-1/2", "1/2-4/5", "4/5-5/4", "5/4-2", "2-3", "> 3")


@dataclass
class Stats:
    """Counts over the records of a manifest (all splits together; see ``split_sizes``)."""

    images: int
    objects: int
    split_sizes: dict[str, tuple[int, int]]  # split -> (images, objects)
    per_class: list[tuple[str, int, int]]  # (name, objects, images containing it)
    per_image: tuple[int, float, float, int]  # min, mean, median, max objects per image
    empty_images: int
    sizes: dict[str, int]  # COCO small / medium / large
    aspects: dict[str, int]  # width / height buckets
    relative_side: tuple[float, float, float]  # 5th, 50th, 95th percentile of sqrt(area / image)
    difficult: int
    crowd: int


def compute_stats(manifest: Manifest) -> Stats:
    """Summarises ``manifest`` (every record, each counted once)."""
    records = manifest.records
    counts = np.array([len(r.labels) for r in records], dtype=np.int64)
    labels = np.concatenate([r.labels for r in records] or [np.zeros(0, np.int64)])
    boxes = np.concatenate([r.boxes_xyxy for r in records] or [np.zeros((0, 4), np.float32)])
    image_area = np.concatenate(
        [np.full(len(r.labels), r.size_hw[0] * r.size_hw[1], np.float64) for r in records]
        or [np.zeros(0)]
    )
    wh = (boxes[:, 2:] - boxes[:, :2]).astype(np.float64)
    area = wh[:, 0] * wh[:, 1]
    per_class = []
    for k, name in enumerate(manifest.class_names):
        with_class = sum(1 for r in records if np.any(r.labels == k))
        per_class.append((name, int(np.sum(labels == k)), with_class))
    split_sizes = {
        name: (len(idx), int(counts[idx].sum()) if idx else 0)
        for name, idx in sorted(manifest.splits.items())
    }
    buckets = np.digitize(wh[:, 0] / np.maximum(wh[:, 1], 1e-9), ASPECT_EDGES)
    relative = np.sqrt(area / np.maximum(image_area, 1))
    percentiles = np.percentile(relative, [5, 50, 95]) if len(relative) else np.zeros(3)
    return Stats(
        images=len(records),
        objects=int(counts.sum()),
        split_sizes=split_sizes,
        per_class=per_class,
        per_image=(
            (int(counts.min()), float(counts.mean()), float(np.median(counts)), int(counts.max()))
            if len(counts)
            else (0, 0.0, 0.0, 0)
        ),
        empty_images=int(np.sum(counts == 0)),
        sizes={
            "small": int(np.sum(area < COCO_SMALL)),
            "medium": int(np.sum((area >= COCO_SMALL) & (area < COCO_MEDIUM))),
            "large": int(np.sum(area >= COCO_MEDIUM)),
        },
        aspects={name: int(np.sum(buckets == k)) for k, name in enumerate(ASPECT_NAMES)},
        relative_side=tuple(float(v) for v in percentiles),
        difficult=int(sum(r.difficult.sum() for r in records)),
        crowd=int(sum(r.iscrowd.sum() for r in records)),
    )
