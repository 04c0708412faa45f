"""The pictures an export is checked on: a data set's own images when one is at hand, else
generated ones (:func:`ssdcli.data.pattern_images`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.errors import DataError

if TYPE_CHECKING:
    from ssdcli.data import Manifest

SPLIT_PREFERENCE = ("val", "test", "train")
"""Splits whose images are taken first: pictures the model has not been trained on."""


def sample_images(
    manifest_path: str | Path | None, count: int = 4, *, log: Callable[[str], None]
) -> list[np.ndarray]:
    """Up to ``count`` images of a manifest (validation split first), else generated ones.

    A manifest that cannot be read, or whose images cannot be decoded (the data moved since the
    checkpoint was trained), does not stop an export: the check runs on generated pictures
    instead, and ``log`` says why.

    Args:
        manifest_path: a ``manifest.json``, or None (no data at hand).
        count: images wanted.
        log: receives one line when the manifest's images cannot be used.

    Returns:
        RGB uint8 ``[h, w, 3]`` arrays of the images' own sizes.
    """
    from ssdcli.data import pattern_images

    if manifest_path is not None and Path(manifest_path).is_file():
        try:
            images = _manifest_images(Path(manifest_path), count)
        except (DataError, OSError) as error:
            log(f"cannot use the images of {manifest_path} ({error}); checking on generated ones")
        else:
            if images:
                return images
    return pattern_images(count)


def _manifest_images(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` images in :data:`SPLIT_PREFERENCE` order, decoded.

    Raises:
        DataError: the manifest or an image cannot be read, or a split names no record.
    """
    from ssdcli.data import Manifest, read_image_rgb

    manifest = Manifest.load(path)
    order = [i for ids in _split_order(manifest) for i in ids][:count]
    for i in order:
        if not 0 <= i < len(manifest.records):
            raise DataError(
                f"{path}: a split names record {i} of {len(manifest.records)}; fix: prepare the "
                "data set again"
            )
    return [read_image_rgb(manifest.records[i].image_path) for i in order]


def _split_order(manifest: Manifest) -> list[list[int]]:
    """The record indices of each split in :data:`SPLIT_PREFERENCE` that the manifest has; all
    records when it has none of them."""
    splits = manifest.splits or {}
    preferred = [name for name in SPLIT_PREFERENCE if name in splits]
    return [list(splits[name]) for name in preferred] or [list(range(len(manifest.records)))]
