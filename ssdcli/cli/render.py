"""Rendering that several commands share: reporters that print to a Rich console, and the data
set report (``ssd prepare-data`` in full, ``ssd train --data`` in a few lines).

No torch here; the data modules are imported inside the functions (``ssd --help`` stays light).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from ssdcli.cli.common import console

if TYPE_CHECKING:
    from ssdcli.data.prepare.stats import Stats
    from ssdcli.data.records import Manifest


class ConsoleReporter:
    """A :class:`~ssdcli.reporting.Reporter` printing each line to a Rich console.

    Args:
        out: the console notes go to (warnings too, unless ``warn_to`` is given).
        plain: escape the text (paths with brackets print as they are), no highlighting, no
            wrapping; False prints the text as Rich would (markup and highlighting on).
        warn_to: the console of warnings; warn_prefix: markup put before a warning.
    """

    def __init__(
        self,
        out: Console,
        *,
        plain: bool = True,
        warn_to: Console | None = None,
        warn_prefix: str = "[yellow]warning:[/] ",
    ) -> None:
        self.console = out
        self.plain = plain
        self.warn_to = warn_to or out
        self.warn_prefix = warn_prefix

    def note(self, text: str) -> None:
        if self.plain:
            self.console.print(escape(text), highlight=False, soft_wrap=True)
        else:
            self.console.print(text)

    def warn(self, text: str) -> None:
        self.warn_to.print(f"{self.warn_prefix}{escape(text)}", highlight=False, soft_wrap=True)

    def show(self, renderable: RenderableType) -> None:
        """A Rich table (or any renderable) on the notes' console."""
        self.console.print(renderable)


def say(text: str) -> None:
    """One line of markup on stdout; never wrapped, so paths and messages stay whole (and
    greppable)."""
    console.print(text, soft_wrap=True)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _data_header(manifest: Manifest, stats: Stats) -> None:
    """The first lines of both reports: source, format, sizes, and how the data was read."""
    say(
        f"[bold]{escape(manifest.source)}[/] ({manifest.format}): {stats.images} images, "
        f"{stats.objects} objects, {len(manifest.class_names)} classes"
    )
    for note in manifest.notes:
        say(f"[cyan]note[/] {escape(note)}")


def print_compact_report(manifest: Manifest) -> None:
    """The report in a few lines (``ssd train --data``): sizes, splits, classes, notes, problems."""
    from ssdcli.data.prepare.stats import compute_stats

    stats = compute_stats(manifest)
    _data_header(manifest, stats)
    splits = ", ".join(f"{name} {count}" for name, (count, _) in stats.split_sizes.items())
    say(f"splits (images): {escape(splits)}")
    classes = ", ".join(f"{name} {objects}" for name, objects, _ in stats.per_class)
    say(f"objects per class: {escape(classes)}")
    if manifest.problems:
        kinds = sorted({p.kind for p in manifest.problems})
        say(
            f"[yellow]{len(manifest.problems)} problems[/] ({', '.join(kinds)}): the objects or "
            "images concerned are left out; `ssd prepare-data` lists them"
        )


def print_report(manifest: Manifest, stats: Stats, max_problems: int = 20) -> None:
    """Prints the data set report (tables and problems) with Rich (``ssd prepare-data``)."""
    from ssdcli.data.records import PROBLEM_KINDS

    _data_header(manifest, stats)
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
    say(
        f"objects per image: min {low}, mean {mean:.1f}, median {median:g}, max {high}; "
        f"images without objects: {stats.empty_images}; difficult: {stats.difficult}; "
        f"crowd: {stats.crowd}"
    )
    sizes = ", ".join(f"{k} {v} ({_pct(v, stats.objects)})" for k, v in stats.sizes.items())
    say(f"box sizes (COCO, by pixel area): {sizes}")
    aspects = ", ".join(f"{k}: {v}" for k, v in stats.aspects.items() if v)
    say(f"aspect ratios (width/height): {aspects or '-'}")
    p5, p50, p95 = stats.relative_side
    say(f"box side / image side (sqrt of areas): 5% {p5:.3f}, median {p50:.3f}, 95% {p95:.3f}")
    if not manifest.problems:
        say("[green]no problems found[/]")
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
            say(f"[yellow]{kind}[/] {escape(problem.file)}: {escape(problem.message)}")
        if len(found) > max_problems:
            say(f"[yellow]{kind}[/] ... {len(found) - max_problems} more in the manifest")
