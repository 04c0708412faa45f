"""Milliseconds per image of a predictor at a batch size: decoded RGB images in, detections out
(preprocessing, the network and post-processing, as ``ssd detect`` runs them)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def ms_per_image(
    predict: Callable[[list[np.ndarray]], Any],
    images: Sequence[np.ndarray],
    batch: int,
    rounds: int,
    min_seconds: float = 1.0,
) -> float:
    """The median over timed rounds of one ``predict`` call on ``batch`` images, per image.

    Two untimed calls first (lazy initialisation, caches, TorchScript's profiling runs); then at
    least ``rounds`` calls and at
    least ``min_seconds`` of them, whichever is longer, so that fast models are not timed on a
    handful of microsecond calls.

    Args:
        predict: takes a list of ``[h, w, 3]`` uint8 RGB images and returns their detections.
        images: at least one image; repeated when fewer than ``batch``.
        batch: images per call.
        rounds: least number of timed calls.
        min_seconds: least total timed time.
    """
    chunk = [images[i % len(images)] for i in range(batch)]
    for _ in range(2):
        predict(chunk)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < rounds or time.perf_counter() - started < min_seconds:
        start = time.perf_counter()
        predict(chunk)
        times.append(time.perf_counter() - start)
        if len(times) >= 200:
            break
    return 1000.0 * statistics.median(times) / batch
