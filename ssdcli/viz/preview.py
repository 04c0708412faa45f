"""A grid of augmented training samples with their boxes drawn, to look at (numpy only)."""

from __future__ import annotations

import numpy as np

from ssdcli.data.images import read_image_rgb
from ssdcli.data.pipeline.transforms import AugmentSettings, augment_ssd
from ssdcli.data.records import Manifest
from ssdcli.errors import DataError
from ssdcli.viz.draw import draw_detections, make_grid


def preview_grid(
    manifest: Manifest,
    split: str,
    size_hw: tuple[int, int] = (300, 300),
    count: int = 16,
    seed: int = 0,
    settings: AugmentSettings | None = None,
    fill_rgb: tuple[int, int, int] = (124, 116, 104),
) -> np.ndarray:
    """uint8 RGB grid of ``count`` augmented samples of ``split`` (drawn at random from ``seed``),
    the training pipeline's output before normalisation, with ground-truth boxes and names."""
    indices = manifest.split_indices(split)
    if not indices:
        raise DataError(f"split {split!r} has no images to preview; fix: choose another --split")
    rng = np.random.default_rng(seed)
    picks = rng.choice(indices, size=count, replace=len(indices) < count)
    tiles = []
    for position, index in enumerate(picks):
        record = manifest.records[int(index)]
        usable = np.flatnonzero(~(record.difficult | record.iscrowd))
        sample_rng = np.random.default_rng([seed, 0, position])
        image = read_image_rgb(record.image_path)
        out = augment_ssd(image, record.boxes_xyxy[usable], size_hw, sample_rng, settings, fill_rgb)
        labels = record.labels[usable][out.keep]
        tiles.append(draw_detections(out.image, out.boxes_xyxy, labels, None, manifest.class_names))
    return make_grid(tiles, columns=int(np.ceil(np.sqrt(count))))
