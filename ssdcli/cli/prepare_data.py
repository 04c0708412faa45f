"""``ssd prepare-data``: validate a data set, report on it, and write its manifest.

``ssd prepare-data SOURCE --out DIR`` reads a VOC, COCO or YOLO data set in any layout that
:func:`ssdcli.data.prepare.layout.open_dataset` knows (detected; ``--format`` restricts it), makes
train/val/test when the data has no splits, prints a report (notes on how the data was read,
sizes, classes, box statistics, every problem with its file) and writes ``DIR/manifest.json``,
the index that ``train`` and ``eval`` read (``data.manifest``).
``ssd prepare-data synthetic --out DIR`` generates the synthetic shapes set in ``DIR`` first.
The work is :func:`ssdcli.prepare_data.run.run`'s; this module parses the options and prints
(the report is :func:`ssdcli.cli.render.print_report`). No torch at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ssdcli.cli.render import print_report, say

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
    from ssdcli.prepare_data import PrepareRequest, run

    names = [n.strip() for n in classes.split(",") if n.strip()] if classes else None
    request = PrepareRequest(
        source=source,
        out=out,
        format=format,
        images_dir=images_dir,
        val=val,
        test=test,
        splits=tuple(split) if split else None,
        classes=tuple(names) if names else None,
        strict=strict,
        decode=decode,
        preview=preview,
        preview_split=preview_split,
        plots=plots,
        input_size=input_size,
        images=images,
        size=size,
        seed=seed,
    )
    run(request, _Reporter(max_problems))


class _Reporter:
    """Prints what :func:`ssdcli.prepare_data.run.run` says: the full report, one line a note."""

    def __init__(self, max_problems: int) -> None:
        self.max_problems = max_problems

    def data_report(self, manifest: Manifest, stats: Stats) -> None:
        print_report(manifest, stats, self.max_problems)

    def note(self, text: str) -> None:
        say(escape(text))

    def warn(self, text: str) -> None:
        say(f"[yellow]warning:[/] {escape(text)}")
