"""Split names: the aliases exporters use, the derived ``trainval`` split, and eval's choice.

Exporters name the validation split ``val`` (Ultralytics, VOC) or ``valid`` (hosted labelling
services). Recipes say ``val``; :func:`resolve_split` finds whichever the data set has, so both
work wherever the data layer looks a split up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

# Names that mean the same split, in the order they are tried.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "val": ("val", "valid", "validation"),
    "valid": ("valid", "val", "validation"),
    "validation": ("validation", "val", "valid"),
}

# The split `ssd eval` reads unless told otherwise (the recipe's data.test_split default).
EVAL_DEFAULT_SPLIT = "test"


def resolve_split(splits: Collection[str], name: str) -> str | None:
    """The name ``name`` has among ``splits``: itself, else an alias (``val`` <-> ``valid``)."""
    for candidate in SPLIT_ALIASES.get(name, (name,)):
        if candidate in splits:
            return candidate
    return None


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
