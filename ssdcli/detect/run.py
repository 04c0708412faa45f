"""``ssd detect``'s one entry point: :func:`run` (a :class:`DetectRequest` and a
:class:`DetectReporter` -> a :class:`DetectOutcome`).

It checks the paths, opens the model, expands the sources, names the run folder
(:func:`ssdcli.run_folder.unique_run_dir`) and calls the frame loop
:func:`ssdcli.detect.frames.run_detect`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from ssdcli.errors import UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.detect.frames import DetectSummary
    from ssdcli.detect.outputs import FrameResult
    from ssdcli.detect.sources import SourceProblem


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
    from ssdcli.detect.frames import count_frames, run_detect
    from ssdcli.detect.sources import expand_sources
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
