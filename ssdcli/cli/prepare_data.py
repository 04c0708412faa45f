"""``ssd prepare-data``: validate a data set, report on it, and write its manifest.

``ssd prepare-data SOURCE --out DIR`` reads a VOC, COCO or YOLO data set in any layout that
:func:`ssdcli.data.prepare.layout.open_dataset` knows (detected; ``--format`` restricts it), makes
train/val/test when the data has no splits, prints a report (notes on how the data was read,
sizes, classes, box statistics, every problem with its file) and writes ``DIR/manifest.json``,
the index that ``train`` and ``eval`` read (``data.manifest``).
``ssd prepare-data synthetic --out DIR`` generates the synthetic shapes set in ``DIR`` first.
The data modules are imported inside the command (``ssd --help`` stays light; no torch at all).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ssdcli.cli.common import console
from ssdcli.errors import DataError, UsageError

if TYPE_CHECKING:
    from ssdcli.data.prepare.stats import Stats
    from ssdcli.data.records import Manifest


def prepare_data(
    source: Annotated[
        str,
        typer.Argument(
            help="Data set folder (any layout: VOC, COCO, YOLO, split folders) or file (COCO "
            "JSON, YOLO data.yaml, manifest.json), or 'synthetic' to generate the shapes data "
            "set in --out."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for manifest.json (synthetic: the data set too)."),
    ],
    format: Annotated[
        str | None, typer.Option(
            "--format", "-f", metavar="voc|coco|yolo", help="Default: detected from the files."
        )
    ] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option(
            "--images-dir",
            help="Folder of the images when the annotations do not locate them (COCO, VOC). "
            "(--images is the synthetic image count.)",
        ),
    ] = None,
    val: Annotated[
        float,
        typer.Option(help="Share of images for the val split made when the data has none."),
    ] = 0.1,
    test: Annotated[
        float,
        typer.Option(help="Share of images for the test split made when the data has none."),
    ] = 0.1,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split to read (repeatable). Default: all.")
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated class names in label order; other "
            "classes are problems. Default: all names found, sorted."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 1 without writing the manifest if any problem is found."
        ),
    ] = False,
    decode: Annotated[
        bool,
        typer.Option(
            "--decode",
            help="Decode every image (slower; finds truncated "
            "files). Default: read image headers only.",
        ),
    ] = False,
    preview: Annotated[
        Path | None,
        typer.Option(
            help="Write a grid of augmented training samples with their boxes to this PNG/JPEG."
        ),
    ] = None,
    preview_split: Annotated[
        str | None,
        typer.Option(help="Split shown by --preview. Default: trainval, train or the first split."),
    ] = None,
    plots: Annotated[
        bool,
        typer.Option("--plots", help="Write DIR/labels.png: label statistics at --input-size."),
    ] = False,
    input_size: Annotated[
        int,
        typer.Option(
            min=32,
            help="Square network input that --plots measures boxes in (384: what "
            "ssd train --data trains at).",
        ),
    ] = 384,
    max_problems: Annotated[
        int, typer.Option(help="Problems listed per kind (all are in manifest.json).")
    ] = 20,
    images: Annotated[int, typer.Option(help="Synthetic: number of images.", min=1)] = 600,
    size: Annotated[int, typer.Option(help="Synthetic: image side in pixels.", min=32)] = 300,
    seed: Annotated[
        int, typer.Option(help="Seed of the splits made, the synthetic data and --preview.")
    ] = 0,
) -> None:
    """Validate a data set, print a report and write DIR/manifest.json for train and eval."""
    from ssdcli.data.prepare.layout import open_dataset
    from ssdcli.data.prepare.manifest import prepare_synthetic
    from ssdcli.data.prepare.stats import compute_stats
    from ssdcli.data.records import MANIFEST_NAME

    names = [n.strip() for n in classes.split(",") if n.strip()] if classes else None
    if source == "synthetic":
        if format or split or names or images_dir:
            raise UsageError(
                "--format, --split, --classes and --images-dir do not apply to 'synthetic'"
            )
        manifest = prepare_synthetic(out, images, size, seed)
    else:
        manifest = open_dataset(
            source, format, images_dir, split, names, decode, val, test, seed, check_duplicates=True
        )
    print_report(manifest, compute_stats(manifest), max_problems)
    if strict and manifest.problems:
        raise DataError(
            f"{len(manifest.problems)} problems found (--strict); manifest not "
            "written; fix the data or drop --strict"
        )
    written = manifest.save(out / MANIFEST_NAME)
    _say(f"wrote {escape(str(written))}")
    if preview is not None:
        _write_preview(manifest, preview, preview_split, seed)
    if plots:
        from ssdcli.viz.labels import write_label_plots

        labels_png = write_label_plots(
            manifest.records, manifest.class_names, out / "labels.png", (input_size, input_size)
        )
        _say(f"wrote {escape(str(labels_png))} (label statistics)")


def _write_preview(manifest: Manifest, path: Path, split: str | None, seed: int) -> None:
    from ssdcli.viz.draw import save_image_rgb
    from ssdcli.viz.preview import preview_grid

    if split is None:
        known = [s for s in ("trainval", "train") if s in manifest.splits]
        split = known[0] if known else next(iter(sorted(manifest.splits)), "")
    save_image_rgb(path, preview_grid(manifest, split, seed=seed))
    _say(f"wrote {escape(str(path))} (augmented samples of split {split!r})")


def _say(text: str) -> None:
    """One line of text; never wrapped, so paths and messages stay whole (and greppable)."""
    console.print(text, soft_wrap=True)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def print_compact_report(manifest: Manifest) -> None:
    """The report in a few lines (``ssd train --data``): sizes, splits, classes, notes, problems."""
    from ssdcli.data.prepare.stats import compute_stats

    stats = compute_stats(manifest)
    _say(
        f"[bold]{escape(manifest.source)}[/] ({manifest.format}): {stats.images} images, "
        f"{stats.objects} objects, {len(manifest.class_names)} classes"
    )
    for note in manifest.notes:
        _say(f"[cyan]note[/] {escape(note)}")
    splits = ", ".join(f"{name} {count}" for name, (count, _) in stats.split_sizes.items())
    _say(f"splits (images): {escape(splits)}")
    classes = ", ".join(f"{name} {objects}" for name, objects, _ in stats.per_class)
    _say(f"objects per class: {escape(classes)}")
    if manifest.problems:
        kinds = sorted({p.kind for p in manifest.problems})
        _say(
            f"[yellow]{len(manifest.problems)} problems[/] ({', '.join(kinds)}): the objects or "
            "images concerned are left out; `ssd prepare-data` lists them"
        )


def print_report(manifest: Manifest, stats: Stats, max_problems: int = 20) -> None:
    """Prints the data set report (tables and problems) with Rich."""
    from ssdcli.data.records import PROBLEM_KINDS

    _say(
        f"[bold]{escape(manifest.source)}[/] ({manifest.format}): {stats.images} images, "
        f"{stats.objects} objects, {len(manifest.class_names)} classes"
    )
    for note in manifest.notes:
        _say(f"[cyan]note[/] {escape(note)}")
    splits = Table(title="splits", title_justify="left")
    for column in ("split", "images", "objects"):
        splits.add_column(column, justify="left" if column == "split" else "right")
    for name, (count, objects) in stats.split_sizes.items():
        splits.add_row(escape(name), str(count), str(objects))
    console.print(splits)
    per_class = Table(title="objects per class", title_justify="left")
    for column in ("label", "class", "objects", "share", "images"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for label, (name, objects, with_class) in enumerate(stats.per_class):
        per_class.add_row(
            str(label), escape(name), str(objects), _pct(objects, stats.objects), str(with_class)
        )
    console.print(per_class)
    low, mean, median, high = stats.per_image
    _say(
        f"objects per image: min {low}, mean {mean:.1f}, median {median:g}, max {high}; "
        f"images without objects: {stats.empty_images}; difficult: {stats.difficult}; "
        f"crowd: {stats.crowd}"
    )
    sizes = ", ".join(f"{k} {v} ({_pct(v, stats.objects)})" for k, v in stats.sizes.items())
    _say(f"box sizes (COCO, by pixel area): {sizes}")
    aspects = ", ".join(f"{k}: {v}" for k, v in stats.aspects.items() if v)
    _say(f"aspect ratios (width/height): {aspects or '-'}")
    p5, p50, p95 = stats.relative_side
    _say(f"box side / image side (sqrt of areas): 5% {p5:.3f}, median {p50:.3f}, 95% {p95:.3f}")
    if not manifest.problems:
        _say("[green]no problems found[/]")
        return
    by_kind = defaultdict(list)
    for problem in manifest.problems:
        by_kind[problem.kind].append(problem)
    summary = Table(title=f"{len(manifest.problems)} problems", title_justify="left")
    summary.add_column("problem")
    summary.add_column("count", justify="right")
    summary.add_column("what was done")
    for kind, found in by_kind.items():
        summary.add_row(kind, str(len(found)), PROBLEM_KINDS[kind])
    console.print(summary)
    for kind, found in by_kind.items():
        for problem in found[:max_problems]:
            _say(f"[yellow]{kind}[/] {escape(problem.file)}: {escape(problem.message)}")
        if len(found) > max_problems:
            _say(f"[yellow]{kind}[/] ... {len(found) - max_problems} more in the manifest")
