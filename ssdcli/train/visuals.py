"""What a run draws besides its curves, so that progress can be seen, not only read.

* ``labels.png`` once per run: label statistics of the training split at the network input size;
* ``val_pred_<iteration>.png`` at each evaluation: the same few validation images (spread evenly
  over the split) with their detections drawn as TP / FP / missed at the max-F1 threshold (the 10
  highest-scored per image; also a TensorBoard image when ``train.tensorboard`` is on);
* ``report.html`` after the final evaluation (see :mod:`ssdcli.evaluate.report`).

All of it on rank 0 only (the callers run there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ssdcli.metrics import analysis as an

if TYPE_CHECKING:
    from ssdcli.evaluate.evaluator import EvalResult
    from ssdcli.train.context import LoopState, TrainParts

PREVIEW_IMAGES = 6
TILE_SIDE = 320  # pixels of one preview tile (letterboxed)


def _size_hw(parts: TrainParts) -> tuple[int, int]:
    return int(parts.recipe.model.size_hw[0]), int(parts.recipe.model.size_hw[1])


def write_run_labels(parts: TrainParts) -> Path:
    """``labels.png`` of the training split, box sizes in pixels of the network input."""
    from ssdcli.viz.labels import write_label_plots

    split = parts.recipe.data.train_split
    records = [parts.manifest.records[i] for i in parts.manifest.split_indices(split)]
    size = _size_hw(parts)
    title = f"split '{split}': {len(records)} images, network input {size[0]}x{size[1]}"
    return write_label_plots(
        records, parts.manifest.class_names, parts.run_dir / "labels.png", size, title
    )


def preview_positions(count: int, wanted: int = PREVIEW_IMAGES) -> list[int]:
    """Up to ``wanted`` positions spread evenly over ``count`` images (first and last included)."""
    if count <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, min(wanted, count))})


def _tile(image_rgb: np.ndarray, side: int = TILE_SIDE) -> np.ndarray:
    """The image scaled to fit a ``side`` square, centred on white (uint8 [side, side, 3])."""
    height, width = image_rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    tile = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - size[1]) // 2, (side - size[0]) // 2
    tile[y : y + size[1], x : x + size[0]] = resized
    return tile


def prediction_grid(
    records: list[Any], result: EvalResult, positions: list[int]
) -> tuple[np.ndarray, float]:
    """A grid of the split's images at ``positions`` drawn with their matched detections.

    Returns:
        (uint8 [H, W, 3] RGB grid, the max-F1 score threshold it was drawn at).
    """
    from ssdcli.data.images import read_image_rgb
    from ssdcli.viz.draw import make_grid
    from ssdcli.viz.matched_boxes import draw_matched

    threshold = an.f1_curve(records, result.detections).threshold
    tiles = []
    for p in positions:  # only the shown images are matched at the threshold
        record, found = records[p], result.detections[p]
        match = an.match_image(record, found, threshold)
        drawn = draw_matched(
            read_image_rgb(record.image_path), record.boxes_xyxy, record.labels, found, match,
            result.class_names, max_shown=10,
        )  # fmt: skip
        tiles.append(_tile(drawn))
    return make_grid(tiles, columns=min(3, len(tiles))), threshold


def after_evaluation(parts: TrainParts, state: LoopState, result: EvalResult) -> list[Path]:
    """Writes ``val_pred_<iteration>.png`` and, after the last iteration, ``report.html``."""
    from ssdcli.viz.draw import save_image_rgb

    split = parts.recipe.data.val_split
    records = [parts.manifest.records[i] for i in parts.manifest.split_indices(split)]
    written = []
    positions = preview_positions(len(records))
    if positions:
        grid, threshold = prediction_grid(records, result, positions)
        path = parts.run_dir / f"val_pred_{state.iteration}.png"
        written.append(save_image_rgb(path, grid))
        if hasattr(parts.metrics, "add_image"):  # TensorBoard on
            parts.metrics.add_image("val/predictions", grid, state.iteration)
        parts.progress.message(f"wrote {path.name} (score threshold {threshold:.3f})")
    if state.iteration >= parts.total_iterations:
        written.append(write_final_report(parts, state, result, records))
    return written


def write_final_report(
    parts: TrainParts, state: LoopState, result: EvalResult, records: list[Any]
) -> Path:
    """``report.html`` in the run folder on the validation split at the end of training."""
    from ssdcli.evaluate.report import REPORT_NAME, ReportRequest, threshold_line, write_report

    title = f"{parts.run_dir.name}, iteration {state.iteration}, split '{result.split}'"
    request = ReportRequest(result, records, _size_hw(parts), title, run_dir=parts.run_dir)
    report = write_report(request, parts.run_dir / REPORT_NAME)
    parts.progress.message(f"wrote {report.path}: {threshold_line(report.analysis, False)}")
    return report.path


def run_files(run_dir: Path) -> list[Path]:
    """The files of this module present in ``run_dir`` (for the run summary)."""
    return [p for p in (run_dir / "labels.png", run_dir / "report.html") if p.is_file()]
