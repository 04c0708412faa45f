"""What the anchor scripts share: the data split, the machine, scoring with `ssd eval`'s metrics.

`anchor_ssdlite.py` and `anchor_yolo.py` train other people's detectors (torchvision's
SSDLite320, Ultralytics' YOLO11n) from scratch on a data set read by ssdcli's data layer and score
their test-split detections with the functions `ssd eval` uses, so that their figures sit beside
`ssd train --data PATH --time 30m && ssd eval` in one table. This module imports ssdcli only
inside the functions that need it (``load_splits``, ``score``), so the Ultralytics side of
`anchor_yolo.py` can import it from a virtual environment without ssdcli.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU model, logical cores and the 1-minute load average now (for every figure)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}


def load_splits(data: str | Path) -> tuple[Any, str, str, str]:
    """The data set as `ssd train --data` reads it: ``(manifest, train, val, test)`` split names.

    Same call as the train command (``open_dataset(PATH)`` with its defaults), so the splits, the
    class order and the boxes (xyxy pixels, zero-area boxes dropped) are the ones ours trains and
    is evaluated on. The test split is ``test``, else ``val``, as `ssd eval` chooses.
    """
    from ssdcli.data import open_dataset

    manifest = open_dataset(Path(data))
    val = manifest.resolve_split("val")
    if "train" not in manifest.splits or val is None:
        raise SystemExit(f"{data}: needs a train and a val split (has {sorted(manifest.splits)})")
    return manifest, "train", val, manifest.resolve_split("test") or val


def parse_budget(text: str) -> float:
    """Seconds of a budget written as for `ssd train --time` (``30m``, ``1h``, ``90s``)."""
    from ssdcli.config import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise SystemExit(f"--time: {error}") from None
    if not seconds or seconds <= 0:
        raise SystemExit(f"--time {text!r}: give a positive duration, e.g. 30m")
    return seconds


def score(manifest: Any, split: str, detections: list[Any]) -> Any:
    """VOC area / VOC07 mAP@0.5 and COCO AP of per-image detections, as `ssd eval` computes them.

    Args:
        manifest: the data set (:func:`load_splits`).
        split: the split scored; ``detections`` follow its record order.
        detections: ``ssdcli.metrics.voc.ImageDetections`` per image (xyxy pixels of the original
            image, labels 0..C-1).
    """
    from ssdcli.evaluate.evaluator import evaluate_detections

    records = [manifest.records[i] for i in manifest.split_indices(split)]
    return evaluate_detections(
        records,
        detections,
        manifest.class_names,
        metric="all",
        category_ids=manifest.category_ids,
        split=split,
    )


def table_row(name: str, data: str, result: Any, run: dict[str, Any]) -> str:
    """One markdown row: network, data, test VOC area / VOC07 / COCO AP, budget, speed, load."""
    m = result.metrics
    return (
        f"| {name} | {Path(data).name}, {result.split} ({len(result.detections)} images) | "
        f"{m['voc_map50']:.3f} | {m['voc07_map50']:.3f} | {m['coco_ap']:.3f} | "
        f"{run['train_seconds'] / 60:.1f} of {run['budget_seconds'] / 60:.4g} min | "
        f"{run['images_seen']} ({run['epochs']:.1f} epochs) | {run['images_per_second']:.1f} | "
        f"{run['load_start']} / {run['load_end']} |"
    )


TABLE_HEADER = (
    "| network | data, split | VOC area mAP@0.5 | VOC07 | COCO AP | training time | "
    "images seen | images/s | load (start / end) |\n|---|---|---|---|---|---|---|---|---|"
)


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` as JSON through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def now() -> str:
    """UTC time stamp for the result file."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
