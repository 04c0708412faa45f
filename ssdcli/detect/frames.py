"""``ssd detect``'s frame loop: a predictor over images and videos, in batches.

Outputs in the run folder (:mod:`ssdcli.detect.outputs`): annotated images (same relative
names), annotated videos (``.mp4``, the processed frames at ``fps / stride``),
``detections.jsonl`` (one line per image or frame: ``image``, ``frame``, ``size_hw``, and per
detection ``box_xyxy`` in pixels of the original image, ``score``, ``label``, ``class_name``) and
optionally a COCO results JSON. A source that cannot be read is recorded as a problem and the run
goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ssdcli.detect.outputs import FrameResult, RunOutputs
from ssdcli.detect.sources import Frame, SourceItem, SourceProblem, iter_frames, video_info
from ssdcli.errors import DataError

if TYPE_CHECKING:
    from ssdcli.infer.base import BasePredictor


@dataclass
class DetectSummary:
    """What a detect run did.

    Attributes:
        out_dir: the run folder (None when nothing is written).
        frames: images and video frames processed; videos: videos among the sources.
        detections: detections kept; per_class: their count per class name.
        problems: sources that could not be read (one line each).
        warnings: images read with a decoder warning (a truncated JPEG: detections cover what
            decoded); they do not change the exit code.
        written: annotated images/videos and JSON files written.
        seconds: wall time of the run.
    """

    out_dir: Path | None
    frames: int = 0
    videos: int = 0
    detections: int = 0
    per_class: Counter = field(default_factory=Counter)
    problems: list[SourceProblem] = field(default_factory=list)
    warnings: list[SourceProblem] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def count_frames(items: Sequence[SourceItem], stride: int) -> int | None:
    """Frames a run will process (None when a video does not tell its length)."""
    total = 0
    for item in items:
        if item.kind == "image":
            total += 1
            continue
        try:
            frames = video_info(item.path)[0]
        except DataError:
            frames = 0
        if frames <= 0:
            return None
        total += -(-frames // stride)
    return total


def run_detect(
    predictor: BasePredictor,
    items: Sequence[SourceItem],
    out_dir: Path | None,
    stride: int = 1,
    save_images: bool = True,
    save_json: Path | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    on_problem: Callable[[SourceProblem], None] | None = None,
    max_side: int | None = None,
    on_warning: Callable[[SourceProblem], None] | None = None,
) -> DetectSummary:
    """Detect objects in every item, in batches of ``predictor.batch_size`` frames.

    Args:
        predictor: any :class:`~ssdcli.infer.eager.BasePredictor`.
        items: images and videos (from :func:`~ssdcli.detect.sources.expand_sources`).
        out_dir: run folder for annotated images/videos and ``detections.jsonl``; None = none.
        stride: process every ``stride``-th video frame.
        save_images: write annotated images and videos.
        save_json: COCO results file to write, or None.
        on_result: called after each frame (tables, progress).
        on_problem: called for each source that cannot be read (the run continues).
        max_side: decode images whose longer side exceeds this at a reduced size.
        on_warning: called once for each image whose decoder printed a warning (the message
            is caught, not left on the terminal).
    """
    from ssdcli.data.images import MAX_DECODE_SIDE

    start = time.perf_counter()
    summary = DetectSummary(out_dir)
    outputs = RunOutputs(out_dir, predictor.class_names, save_images)
    try:
        for frames in _batched_frames(
            items,
            stride,
            predictor.batch_size,
            max_side or MAX_DECODE_SIDE,
            summary,
            on_problem,
            outputs,
            on_warning,
        ):
            found = predictor.predict([f.image_rgb for f in frames], [f.size_hw for f in frames])
            for frame, det in zip(frames, found, strict=True):
                result = FrameResult(frame, det)
                outputs.add(result)
                summary.frames += 1
                summary.detections += len(det)
                summary.per_class.update(predictor.class_names[int(i)] for i in det.labels_D)
                if on_result is not None:
                    on_result(result)
        if save_json is not None:
            outputs.write_coco(save_json, predictor.info.category_ids)
    finally:
        outputs.close()
    summary.written = outputs.written
    summary.seconds = time.perf_counter() - start
    return summary


def _batched_frames(
    items: Sequence[SourceItem],
    stride: int,
    batch_size: int,
    max_side: int,
    summary: DetectSummary,
    on_problem: Callable[[SourceProblem], None] | None,
    outputs: RunOutputs,
    on_warning: Callable[[SourceProblem], None] | None = None,
) -> Iterator[list[Frame]]:
    """Frames grouped into batches; images batch across files, a video's frames within it."""
    pending: list[Frame] = []
    for item in items:
        if item.kind == "video":
            if pending:
                yield pending
                pending = []
            try:
                fps = video_info(item.path)[1]
            except DataError as error:
                _problem(summary, on_problem, item, error)
                continue
            summary.videos += 1
            outputs.open_video(item, fps / stride)
            batch: list[Frame] = []
            for frame in iter_frames(item, stride, max_side):
                batch.append(frame)
                if len(batch) == batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch
            outputs.close_video()
            continue
        try:
            frames = list(iter_frames(item, stride, max_side))
        except DataError as error:
            _problem(summary, on_problem, item, error)
            continue
        for frame in frames:
            if frame.decoder_warning:
                warning = SourceProblem(str(item.path), f"decoder: {frame.decoder_warning}")
                summary.warnings.append(warning)
                if on_warning is not None:
                    on_warning(warning)
        pending.extend(frames)
        if len(pending) >= batch_size:
            yield pending
            pending = []
    if pending:
        yield pending


def _problem(
    summary: DetectSummary,
    on_problem: Callable[[SourceProblem], None] | None,
    item: SourceItem,
    error: Exception,
) -> None:
    problem = SourceProblem(str(item.path), str(error))
    summary.problems.append(problem)
    if on_problem is not None:
        on_problem(problem)
