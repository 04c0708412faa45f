"""Splits made for data without any: deterministic, fractions kept, same pictures together."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layout_builders import write_image

from ssdcli.data.prepare.dedup import duplicate_groups
from ssdcli.data.prepare.splits import assign_splits, make_splits, split_target
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import UsageError

fractions = st.floats(0.0, 0.45).map(lambda v: round(v, 2))


@settings(max_examples=100, deadline=None)
@given(
    groups=st.lists(st.integers(0, 30), min_size=0, max_size=120),
    val=fractions,
    test=fractions,
    seed=st.integers(0, 2**31),
)
def test_assigned_splits_are_deterministic_partitions_that_keep_groups(
    groups: list[int], val: float, test: float, seed: int
) -> None:
    ids = [f"img{i}" for i in range(len(groups))]
    splits = assign_splits(ids, groups, val, test, seed)
    assert splits == assign_splits(ids, groups, val, test, seed)
    every = sorted(i for indices in splits.values() for i in indices)
    assert every == list(range(len(groups)))  # each image in exactly one split
    split_of = {i: name for name, indices in splits.items() for i in indices}
    for group in set(groups):
        assert len({split_of[i] for i, g in enumerate(groups) if g == group}) == 1
    largest = max((groups.count(g) for g in set(groups)), default=0)
    counts = {name: len(splits.get(name, [])) for name in ("train", "val", "test")}
    for name, fraction in (("test", test), ("val", val)):
        target = split_target(fraction, len(groups))
        assert counts[name] < target + max(largest, 1)  # overshoots by less than a group
        if counts[name] < target:  # short only when nothing was left for the later splits
            assert counts["train"] == 0


def test_fractions_are_respected_without_duplicates() -> None:
    ids = [f"img{i}" for i in range(1000)]
    splits = assign_splits(ids, list(range(1000)), 0.15, 0.1, seed=7)
    assert [len(splits[n]) for n in ("train", "val", "test")] == [750, 150, 100]
    other_seed = assign_splits(ids, list(range(1000)), 0.15, 0.1, seed=8)
    assert other_seed["test"] != splits["test"]


def test_bad_fractions_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--val 0.6 --test 0.5"):
        assign_splits(["a"], [0], 0.6, 0.5, 0)


@settings(max_examples=15, deadline=None)
@given(
    originals=st.integers(3, 8),
    copies=st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from(["bytes", "resized"]), st.floats(0.4, 2.5)),
        max_size=5,
    ),
    seed=st.integers(0, 1000),
)
def test_same_pictures_land_in_one_split(
    originals: int, copies: list[tuple[int, str, float]], seed: int
) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        paths = [
            write_image(folder / f"o{i}.jpg", 60, 80, seed=seed * 100 + i) for i in range(originals)
        ]
        expected = list(range(originals))
        for k, (source, kind, scale) in enumerate(copies):
            source %= originals
            path = folder / f"c{k}.png"
            if kind == "bytes":
                path = path.with_suffix(".jpg")
                shutil.copyfile(paths[source], path)
            else:
                image = cv2.imread(str(paths[source]))
                resized = cv2.resize(image, (round(80 * scale), round(60 * scale)))
                assert cv2.imwrite(str(path), resized)
            paths.append(path)
            expected.append(source)
        groups = duplicate_groups(paths)
        assert groups == expected  # each copy joins its original, and nothing else is joined
        records = [Record.make(p.stem, p, (60, 80)) for p in paths]
        manifest = make_splits(Manifest(["x"], records, {}), 0.3, 0.3, seed)
        split_of = {i: name for name, indices in manifest.splits.items() for i in indices}
        for copy, source in enumerate(expected):
            assert split_of[copy] == split_of[source]
        duplicated = len({s for s in expected[originals:]})
        assert manifest.split_made["duplicate_groups"] == duplicated
        assert f"{duplicated} group(s) of the same picture" in manifest.notes[-1]
    finally:
        shutil.rmtree(folder)


def test_pictures_shared_by_the_data_sets_own_splits_are_noted(tmp_path: Path) -> None:
    from layout_builders import voc_xml

    from ssdcli.data.prepare.layout import open_dataset

    for split, stem, size in (("train", "x", (40, 50)), ("valid", "y", (80, 100))):
        write_image(tmp_path / split / f"{stem}.jpg", *size, seed=11)  # y: x at twice the size
        (tmp_path / split / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", *size, []))
    write_image(tmp_path / "test" / "z.jpg", 40, 50, seed=12)
    (tmp_path / "test" / "z.xml").write_text(voc_xml("z.jpg", 40, 50, []))
    assert not open_dataset(tmp_path).notes  # only prepare-data looks (it decodes every image)
    notes = open_dataset(tmp_path, check_duplicates=True).notes
    assert len(notes) == 1 and "1 group(s) of the same picture" in notes[0]
    assert "x.jpg and y.jpg" in notes[0]
