"""A data set's splits: the ones made when it has none, and the derived ones.

* :func:`make_splits` gives a data set without splits of its own (or with one) train/val/test.
  Each group of same-picture images (:mod:`ssdcli.data.prepare.dedup`) goes to one split; the
  order is a hash of the seed and the group's first image id, so the same data and seed give the
  same splits on any machine, and adding an image moves no other group. Groups fill ``test`` then
  ``val`` up to their fractions of the images; the rest is ``train``.
* :func:`add_trainval` derives ``trainval`` (the recipe's default training split), and
  :func:`eval_split_note` says which split ``ssd eval`` will read when there is no ``test``.
* :func:`shared_pictures_note` warns when the data set's own splits divide copies of a picture.

Split names and their aliases (``val`` finds ``valid``) are
:func:`ssdcli.data.records.resolve_split`, since a :class:`Manifest` looks its splits up by them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from ssdcli.data.prepare.dedup import duplicate_groups
from ssdcli.data.records import Manifest, resolve_split
from ssdcli.errors import UsageError

MADE_SPLITS = ("train", "val", "test")

# The split `ssd eval` reads unless told otherwise (the recipe's data.test_split default).
EVAL_DEFAULT_SPLIT = "test"


def add_trainval(splits: dict[str, list[int]]) -> None:
    """Adds ``trainval`` = train + val (or valid) when both exist and ``trainval`` does not.

    ``trainval`` is the recipe's default training split (the VOC convention).
    """
    val = resolve_split(splits, "val")
    if "trainval" not in splits and "train" in splits and val is not None:
        splits["trainval"] = sorted(set(splits["train"]) | set(splits[val]))


def eval_split_note(splits: Mapping[str, list[int]]) -> str | None:
    """One line on the split `ssd eval` will use when the data set has train and val but no test.

    `ssd eval` evaluates ``--split``, else the recipe's ``data.test_split`` (``test``); it does not
    fall back to another split, so the line says what to pass instead.
    """
    val = resolve_split(splits, "val")
    if EVAL_DEFAULT_SPLIT in splits or val is None or "train" not in splits:
        return None
    return (
        f"no '{EVAL_DEFAULT_SPLIT}' split: `ssd eval` evaluates data.test_split "
        f"('{EVAL_DEFAULT_SPLIT}' by default), so run it with --split {val} "
        f"(or set data.test_split={val} and data.val_split={val})"
    )


def needs_splits(manifest: Manifest) -> bool:
    """Whether the data set came without splits of its own (none, or a single one)."""
    return len(manifest.splits) <= 1


def _order_key(seed: int, image_id: str) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def split_target(fraction: float, count: int) -> int:
    """Images a made split aims at: ``round(fraction * count)``, at least 1 from 3 images on.

    (A small data set still gets a val and a test image, so that training can validate.)
    """
    if fraction <= 0:
        return 0
    return max(round(fraction * count), 1 if count >= 3 else 0)


def assign_splits(
    image_ids: list[str], groups: list[int], val: float, test: float, seed: int
) -> dict[str, list[int]]:
    """Split name -> sorted indices; images of one group always share a split.

    Each of ``test`` and ``val`` takes groups until it holds :func:`split_target` images or
    more, so it overshoots its share by less than the largest group.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UsageError(f"--val {val} --test {test}: each in [0, 1) and together below 1")
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    order = sorted(members, key=lambda g: _order_key(seed, image_ids[members[g][0]]))
    targets = {"test": split_target(test, len(image_ids)), "val": split_target(val, len(image_ids))}
    splits: dict[str, list[int]] = {name: [] for name in MADE_SPLITS}
    for group in order:
        name = next((n for n in ("test", "val") if len(splits[n]) < targets[n]), "train")
        splits[name] += members[group]
    return {name: sorted(indices) for name, indices in splits.items() if indices or name == "train"}


def make_splits(manifest: Manifest, val: float = 0.1, test: float = 0.1, seed: int = 0) -> Manifest:
    """Gives ``manifest`` the splits train/val/test (in place, and returned).

    Records ``split_made`` (fractions, seed, groups of duplicates) and one note for the report.
    """
    records = manifest.records
    groups = duplicate_groups([r.image_path for r in records])
    sizes: dict[int, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    repeated = sum(1 for size in sizes.values() if size > 1)
    had = ", ".join(sorted(manifest.splits)) or "none"
    manifest.splits = assign_splits([r.image_id for r in records], groups, val, test, seed)
    manifest.split_made = {"val": val, "test": test, "seed": seed, "duplicate_groups": repeated}
    counts = ", ".join(f"{name} {len(ix)}" for name, ix in manifest.splits.items())
    manifest.notes.append(
        f"no splits in the data (had: {had}): made {counts} (--val {val:g} --test {test:g} "
        f"--seed {seed}); {repeated} group(s) of the same picture "
        f"({sum(s for s in sizes.values() if s > 1)} images) each kept in one split"
    )
    return manifest


def shared_pictures_note(manifest: Manifest) -> str | None:
    """One line on groups of the same picture that the data set's own splits divide, or None.

    Such a group puts copies of training images into val or test, which makes their scores
    optimistic; the note names one example.
    """
    own = {name: ix for name, ix in manifest.splits.items() if name != "trainval"}
    if len(own) < 2:
        return None
    groups = duplicate_groups([r.image_path for r in manifest.records])
    splits_of: dict[int, set[str]] = {}
    example: dict[int, list[int]] = {}
    for name, indices in own.items():
        for i in indices:
            splits_of.setdefault(groups[i], set()).add(name)
            example.setdefault(groups[i], []).append(i)
    divided = sorted(g for g, names in splits_of.items() if len(names) > 1)
    if not divided:
        return None
    first = example[divided[0]]
    names = " and ".join(Path(manifest.records[i].image_path).name for i in first[:2])
    return (
        f"{len(divided)} group(s) of the same picture (identical or resized) lie in more than "
        f"one of the splits {', '.join(own)} (e.g. {names}); scores on those splits are "
        "optimistic"
    )
