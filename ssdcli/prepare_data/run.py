"""``ssd prepare-data``'s one entry point: a data set (or ``synthetic``) -> ``manifest.json``.

:func:`run` reads the data set in any layout
:func:`ssdcli.data.prepare.layout.open_dataset` knows (or generates the synthetic shapes set),
hands the manifest and its statistics to the reporter (before ``strict`` may stop the command:
the report says why), writes ``OUT/manifest.json``, and on request a preview grid of augmented
samples and ``OUT/labels.png``. No torch at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ssdcli.errors import DataError, UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    from ssdcli.data.prepare.stats import Stats
    from ssdcli.data.records import Manifest

SYNTHETIC = "synthetic"
"""The SOURCE that generates the shapes data set instead of reading one."""


class PrepareReporter(Reporter, Protocol):
    """A :class:`~ssdcli.reporting.Reporter` that also shows the data set report."""

    def data_report(self, manifest: Manifest, stats: Stats) -> None:
        """The data set as read: sizes, splits, classes, box statistics, problems."""


@dataclass(frozen=True, kw_only=True)
class PrepareRequest:
    """What ``ssd prepare-data`` was asked.

    Attributes:
        source: a data set folder or file, or ``"synthetic"``.
        out: the folder of ``manifest.json`` (synthetic: of the data set too).
        format: ``voc``, ``coco`` or ``yolo``; None = detected from the files.
        images_dir: where the images are when the annotations do not say (COCO, VOC).
        val, test: shares of images for the splits made when the data has none.
        splits: splits to read (None = all); classes: class names in label order (None = all
            found, sorted).
        strict: any problem stops the command before the manifest is written.
        decode: decode every image (finds truncated files) instead of reading headers.
        preview: a PNG/JPEG grid of augmented samples to write; preview_split: its split
            (None = trainval, train or the first split).
        plots: write ``OUT/labels.png``; input_size: the square input its boxes are measured in.
        images, size: synthetic image count and side in pixels.
        seed: of the splits made, the synthetic data and the preview.
    """

    source: str
    out: Path
    format: str | None = None
    images_dir: Path | None = None
    val: float = 0.1
    test: float = 0.1
    splits: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    strict: bool = False
    decode: bool = False
    preview: Path | None = None
    preview_split: str | None = None
    plots: bool = False
    input_size: int = 384
    images: int = 600
    size: int = 300
    seed: int = 0


@dataclass
class PrepareOutcome:
    """What :func:`run` did: the manifest (as written) and every file written, in order."""

    manifest: Manifest
    written: list[Path] = field(default_factory=list)


def run(request: PrepareRequest, reporter: PrepareReporter) -> PrepareOutcome:
    """Reads (or generates) the data set, reports on it and writes its manifest.

    Raises:
        UsageError: options that do not apply to ``synthetic``.
        DataError: an unreadable data set, or problems found with ``strict``.
    """
    from ssdcli.data.prepare.layout import open_dataset
    from ssdcli.data.prepare.manifest import prepare_synthetic
    from ssdcli.data.prepare.stats import compute_stats
    from ssdcli.data.records import MANIFEST_NAME

    names = list(request.classes) if request.classes else None
    splits = list(request.splits) if request.splits else None
    if request.source == SYNTHETIC:
        if request.format or splits or names or request.images_dir:
            raise UsageError(
                "--format, --split, --classes and --images-dir do not apply to 'synthetic'"
            )
        manifest = prepare_synthetic(request.out, request.images, request.size, request.seed)
    else:
        manifest = open_dataset(
            request.source,
            request.format,
            request.images_dir,
            splits,
            names,
            request.decode,
            request.val,
            request.test,
            request.seed,
            check_duplicates=True,
        )
    reporter.data_report(manifest, compute_stats(manifest))
    if request.strict and manifest.problems:
        raise DataError(
            f"{len(manifest.problems)} problems found (--strict); manifest not "
            "written; fix the data or drop --strict"
        )
    outcome = PrepareOutcome(manifest)
    written = manifest.save(request.out / MANIFEST_NAME)
    outcome.written.append(written)
    reporter.note(f"wrote {written}")
    if request.preview is not None:
        split = _write_preview(manifest, request.preview, request.preview_split, request.seed)
        outcome.written.append(request.preview)
        reporter.note(f"wrote {request.preview} (augmented samples of split {split!r})")
    if request.plots:
        from ssdcli.viz.labels import write_label_plots

        size = (request.input_size, request.input_size)
        labels_png = write_label_plots(
            manifest.records, manifest.class_names, request.out / "labels.png", size
        )
        outcome.written.append(labels_png)
        reporter.note(f"wrote {labels_png} (label statistics)")
    return outcome


def _write_preview(manifest: Manifest, path: Path, split: str | None, seed: int) -> str:
    """Writes the preview grid of ``split`` (default: trainval, train or the first); returns
    the split shown."""
    from ssdcli.viz.draw import save_image_rgb
    from ssdcli.viz.preview import preview_grid

    if split is None:
        known = [s for s in ("trainval", "train") if s in manifest.splits]
        split = known[0] if known else next(iter(sorted(manifest.splits)), "")
    save_image_rgb(path, preview_grid(manifest, split, seed=seed))
    return split
