"""``ssd detect``: run a predictor over images and videos and write what it found.

:func:`run` is the command's entry point (a :class:`DetectRequest` and a
:class:`DetectReporter` -> a :class:`DetectOutcome`): it checks the paths, opens the model,
expands the sources, names the run folder and calls :func:`run_detect`, the loop over frames.

Outputs in the run folder: annotated images (same relative names), annotated videos (``.mp4``,
the processed frames at ``fps / stride``), ``detections.jsonl`` (one line per image or frame:
``image``, ``frame``, ``size_hw``, and per detection ``box_xyxy`` in pixels of the original image,
``score``, ``label``, ``class_name``) and optionally a COCO results JSON. A source that cannot be
read is recorded as a problem and the run goes on.
"""

from __future__ import annotations

import difflib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np

from ssdcli.data.sources import Frame, SourceItem, SourceProblem, iter_frames, video_info
from ssdcli.errors import DataError, SsdError, UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.infer.base import BasePredictor
    from ssdcli.postprocess import Detections

JSONL_NAME = "detections.jsonl"
_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class FrameResult:
    """Detections of one image or video frame (boxes in pixels of the original image)."""

    frame: Frame
    detections: Detections


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


@dataclass(frozen=True, kw_only=True)
class DetectRequest:
    """What ``ssd detect`` was asked.

    Attributes:
        sources: images, folders, globs, videos, or ``-`` (paths read from ``stdin``).
        model: a checkpoint or exported file; None = the newest ``runs/*/best.pt``.
        threshold: shown detections score above this; nms_iou, max_det: None = the model's.
        classes: keep only these class names (None = all; empty = a usage error).
        out: the run folder; None = ``runs/detect/<name>`` (never an existing one).
        save_json: a COCO results file to write too; save_images: write annotated pictures.
        batch: images per forward pass; stride: every ``stride``-th video frame.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``; precision: ``auto``,
            ``float32`` or ``bf16`` (checkpoints).
        stdin: the stream ``-`` reads paths from (the CLI passes ``sys.stdin``).
    """

    sources: tuple[str, ...]
    model: Path | None = None
    threshold: float = 0.5
    nms_iou: float | None = None
    max_det: int | None = None
    classes: tuple[str, ...] | None = None
    out: Path | None = None
    save_json: Path | None = None
    save_images: bool = True
    batch: int = 8
    device: str = "auto"
    stride: int = 1
    precision: str = "auto"
    stdin: TextIO | None = None


@dataclass(frozen=True)
class DetectStart:
    """What a detect run is about to do (for the reporter's first line and progress bar).

    Attributes:
        model: the model file; fmt: its format; device: the torch device it runs on;
        precision: what a checkpoint runs in (``float32``/``bf16``), None for exported files.
        frames: images and frames to process (None when a video does not tell its length).
        class_names: the model's classes.
    """

    model: Path
    fmt: str
    device: str
    precision: str | None
    frames: int | None
    class_names: list[str]


class DetectReporter(Reporter, Protocol):
    """A :class:`~ssdcli.reporting.Reporter` that also follows the frames of a detect run.

    ``note`` carries the model's notes; ``warn`` an image read with a decoder warning.
    """

    def skipped(self, problem: SourceProblem) -> None:
        """A source that could not be read (the run goes on; the exit code will be 1)."""

    def begin(self, start: DetectStart) -> None:
        """The model is open and the inputs are known; frames follow."""

    def frame(self, result: FrameResult) -> None:
        """One image or video frame done."""

    def end(self) -> None:
        """No more frames (also after an error)."""


@dataclass
class DetectOutcome:
    """What :func:`run` did: ``summary`` is None when no input could be read at all;
    ``problems`` are the sources that expanded to nothing."""

    model: Path
    summary: DetectSummary | None
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any input could not be read (``ssd detect`` exits 1)."""
        return self.summary is None or bool(self.problems or self.summary.problems)


def run(request: DetectRequest, reporter: DetectReporter) -> DetectOutcome:
    """Detects objects in every source as ``request`` says and writes the run folder.

    Raises:
        UsageError: a bad ``--classes``, ``--device`` or ``--precision``, or no model to
            default to.
        CheckpointError: a missing or unreadable model; other path errors before any work.
    """
    from ssdcli import paths
    from ssdcli.data.sources import expand_sources
    from ssdcli.device import parse_device
    from ssdcli.errors import CheckpointError
    from ssdcli.infer.open import find_default_model, open_predictor
    from ssdcli.postprocess import PostprocessOverrides
    from ssdcli.run_folder import unique_run_dir

    if request.model is not None:
        paths.existing_file(request.model, "--model", paths.MODEL_FILE, CheckpointError)
    if request.out is not None:
        paths.output_dir(request.out, "--out", "an output folder")
    if request.save_json is not None:
        paths.output_file(request.save_json, "--save-json", "a JSON file to write")
    model_path = request.model if request.model is not None else find_default_model("runs")
    torch_device = parse_device(request.device)
    asked = PostprocessOverrides(request.threshold, request.nms_iou, request.max_det)
    predictor = open_predictor(
        model_path, torch_device, asked, batch_size=request.batch, precision=request.precision
    )
    if request.classes is not None:
        predictor.classes = class_indices(request.classes, predictor.class_names)
    for note in getattr(predictor, "notes", []):
        reporter.note(note)
    stdin = request.stdin if "-" in request.sources else None
    items, problems = expand_sources(list(request.sources), stdin)
    for problem in problems:
        reporter.skipped(problem)
    if not items:
        return DetectOutcome(model_path, None, problems)
    out_dir = request.out
    if out_dir is None:
        out_dir = unique_run_dir(
            Path("runs") / "detect", run_name(request.sources), always_numbered=False
        )
    total = count_frames(items, request.stride)
    start = DetectStart(
        model_path,
        predictor.info.fmt,
        str(torch_device),
        getattr(predictor, "precision", None),
        total,
        list(predictor.class_names),
    )
    reporter.begin(start)
    try:
        summary = run_detect(
            predictor,
            items,
            out_dir,
            stride=request.stride,
            save_images=request.save_images,
            save_json=request.save_json,
            on_result=reporter.frame,
            on_problem=reporter.skipped,
            on_warning=lambda warning: reporter.warn(str(warning)),
        )
    finally:
        reporter.end()
    return DetectOutcome(model_path, summary, problems)


def class_indices(names: Sequence[str], class_names: list[str]) -> list[int]:
    """The labels of ``names`` (``--classes``) among the model's ``class_names``.

    Raises:
        UsageError: a name the model does not have (the closest one suggested), or no name.
    """
    indices = []
    for name in names:
        if name not in class_names:
            close = difflib.get_close_matches(name, class_names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"--classes: the model has no class {name!r}{hint} "
                f"(classes: {', '.join(class_names)})"
            )
        indices.append(class_names.index(name))
    if not indices:
        raise UsageError("--classes: give class names separated by commas, e.g. --classes dog,cat")
    return indices


def run_name(sources: Sequence[str]) -> str:
    """The output folder's name: the first input that exists (a missing one names nothing),
    a glob by the folder it searches (``imgs/*.jpg`` -> ``imgs``), stdin as ``stdin``."""
    for source in sources:
        if source == "-":
            return "stdin"
        parts = Path(source.rstrip("/")).parts
        wild = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), None)
        if wild is not None:
            base = Path(*parts[:wild]) if wild else Path.cwd()
            name = base.resolve().name
        elif Path(source).exists():
            name = Path(source).resolve().stem
        else:
            continue
        cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
        if cleaned:
            return cleaned
    return "detect"


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


class _Outputs:
    """Writers of one run: annotated images and videos, JSON lines, COCO results."""

    def __init__(self, out_dir: Path | None, class_names: list[str], save_images: bool) -> None:
        self.out_dir = out_dir
        self.class_names = class_names
        self.save_images = save_images and out_dir is not None
        self.used: set[Path] = set()
        self.written: list[Path] = []
        self.coco: list[tuple[str, str, Any]] = []  # (image id text, file name, detections)
        self.jsonl = None
        self.video_writer: Any = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = (out_dir / JSONL_NAME).open("w", encoding="utf-8")
            self.written.append(out_dir / JSONL_NAME)

    def add(self, result: FrameResult) -> None:
        frame, det = result.frame, result.detections
        boxes = det.boxes_D4.numpy().astype(np.float64)
        scores, labels = det.scores_D.numpy(), det.labels_D.numpy()
        if self.jsonl is not None:
            entry = {
                "image": str(frame.item.path),
                "frame": frame.index,
                "size_hw": list(frame.size_hw),
                "detections": [
                    {
                        "box_xyxy": [round(float(v), 2) for v in box],
                        "score": round(float(score), 5),
                        "label": int(label),
                        "class_name": self.class_names[int(label)],
                    }
                    for box, score, label in zip(boxes, scores, labels, strict=True)
                ],
            }
            self.jsonl.write(json.dumps(entry) + "\n")
        stem = Path(frame.item.rel_name).stem
        image_id = stem if frame.index is None else f"{stem}_{frame.index}"
        self.coco.append((image_id, frame.name, det))
        if self.save_images:
            self._annotate(frame, boxes, scores, labels)

    def _annotate(self, frame: Frame, boxes: np.ndarray, scores: Any, labels: Any) -> None:
        from ssdcli.viz.draw import draw_detections, save_image_rgb

        height, width = frame.image_rgb.shape[:2]
        scale = np.array([width / frame.size_hw[1], height / frame.size_hw[0]] * 2)
        drawn = draw_detections(frame.image_rgb, boxes * scale, labels, scores, self.class_names)
        if frame.item.kind == "video":
            self._video_frame(frame, drawn)
            return
        rel = Path(frame.item.rel_name)
        if rel.suffix.lower() not in _WRITABLE:
            rel = rel.with_suffix(".png")
        save_image_rgb(self._unique(self.out_dir / rel), drawn)

    def _unique(self, path: Path) -> Path:
        candidate, n = path, 1
        while candidate in self.used or candidate.exists():
            n += 1
            candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        self.used.add(candidate)
        self.written.append(candidate)
        return candidate

    def open_video(self, item: SourceItem, fps: float) -> None:
        self.close_video()
        if self.save_images:
            self._video_path = self._unique(self.out_dir / Path(item.rel_name).with_suffix(".mp4"))
            self._video_fps = fps

    def _video_frame(self, frame: Frame, drawn: np.ndarray) -> None:
        import cv2

        if self.video_writer is None:
            height, width = drawn.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._video_path.parent.mkdir(parents=True, exist_ok=True)
            self.video_writer = cv2.VideoWriter(
                str(self._video_path), fourcc, self._video_fps, (width, height)
            )
            if not self.video_writer.isOpened():
                raise SsdError(f"cannot write video {self._video_path}; check the folder")
        self.video_writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))

    def close_video(self) -> None:
        if self.video_writer is not None:
            self.video_writer.release()
            self.video_writer = None

    def close(self) -> None:
        self.close_video()
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None

    def write_coco(self, path: Path, category_ids: Sequence[int] | None) -> Path:
        """COCO results (``xywh_topleft`` boxes, category ids, image ids from file names)."""
        from ssdcli.metrics.coco import coco_category_ids, coco_image_ids, to_coco_results
        from ssdcli.metrics.voc import ImageDetections

        ids = coco_image_ids([image_id for image_id, _, _ in self.coco])
        dets = [
            ImageDetections(d.boxes_D4.numpy(), d.scores_D.numpy(), d.labels_D.numpy())
            for _, _, d in self.coco
        ]
        cats = coco_category_ids(len(self.class_names), category_ids)
        entries = to_coco_results(dets, ids, cats)
        names = {coco_id: name for coco_id, (_, name, _) in zip(ids, self.coco, strict=True)}
        for entry in entries:
            entry["bbox"] = [round(v, 2) for v in entry["bbox"]]
            entry["score"] = round(entry["score"], 5)
            entry["file_name"] = names[entry["image_id"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries) + "\n", encoding="utf-8")
        self.written.append(path)
        return path


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
        items: images and videos (from :func:`~ssdcli.data.sources.expand_sources`).
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
    outputs = _Outputs(out_dir, predictor.class_names, save_images)
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
    outputs: _Outputs,
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
