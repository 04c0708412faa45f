"""Readers fuzzed: truncated, byte-flipped and wrongly typed annotation files never crash.

Each mutated VOC XML, COCO JSON, YOLO label file or data.yaml gives records or a ``DataError``
that names the file; any other exception is a bug.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layout_builders import coco_json, write_voc_flat, write_yolo_yaml

from ssdcli.data.prepare.layout import open_dataset
from ssdcli.data.records import Manifest
from ssdcli.errors import DataError

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Values of the wrong type (or the right type, out of range) put where a field was.
odd_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text("ab1./ -", max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", max_size=2), inner),
    max_leaves=4,
)


@st.composite
def byte_damage(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, or with a few bytes replaced."""
    data = bytearray(original)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _paths(node: object, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into a JSON-like value (keys and list positions)."""
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def type_damage(draw: st.DrawFn, original: dict) -> dict:
    """``original`` with one to three fields deleted or replaced by values of another type."""
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(odd_values)
    return doc


def _read_or_data_error(source: Path, damaged: Path) -> Manifest | None:
    """Reads ``source``; a DataError must name ``damaged`` (the file that was mutated)."""
    try:
        return open_dataset(source)
    except DataError as error:
        assert damaged.name in str(error), str(error)
        return None


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_voc_flat(tmp_path_factory.mktemp("voc"), ["a", "b"])


@FUZZ
@given(data=st.data())
def test_voc_xml_bytes(voc_root: Path, data: st.DataObject) -> None:
    xml = voc_root / "a.xml"
    original = xml.read_bytes()
    try:
        xml.write_bytes(data.draw(byte_damage(original)))
        _read_or_data_error(voc_root, xml)
    finally:
        xml.write_bytes(original)


@FUZZ
@given(data=st.data())
def test_voc_xml_fields(voc_root: Path, data: st.DataObject) -> None:
    xml = voc_root / "a.xml"
    original = xml.read_text()
    tags = ["filename", "width", "height", "name", "difficult", "xmin", "ymin", "xmax", "ymax"]
    text = original
    for _ in range(data.draw(st.integers(1, 3))):
        tag = data.draw(st.sampled_from(tags))
        value = data.draw(st.sampled_from(["", "-5", "1e400", "nan", "x", "0", "2", "1.5e3"]))
        if data.draw(st.booleans()):  # drop the element
            start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
            if start >= 0 and end > start:
                text = text[:start] + text[end + len(tag) + 3 :]
        else:
            start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
            if start >= 0 and end > start:
                text = text[: start + len(tag) + 2] + value + text[end:]
    try:
        xml.write_text(text)
        _read_or_data_error(voc_root, xml)
    finally:
        xml.write_text(original)


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    write_voc_flat(root / "imgs", ["a", "b", "c"])  # only for the images
    path = root / "imgs" / "labels.json"
    path.write_text(json.dumps(coco_json(["a", "b", "c"])))
    return path


@FUZZ
@given(data=st.data())
def test_coco_json_bytes(coco_file: Path, data: st.DataObject) -> None:
    original = coco_file.read_bytes()
    try:
        coco_file.write_bytes(data.draw(byte_damage(original)))
        _read_or_data_error(coco_file, coco_file)
    finally:
        coco_file.write_bytes(original)


@FUZZ
@given(data=st.data())
def test_coco_json_types(coco_file: Path, data: st.DataObject) -> None:
    original = coco_file.read_text()
    try:
        coco_file.write_text(json.dumps(data.draw(type_damage(json.loads(original)))))
        _read_or_data_error(coco_file, coco_file)
    finally:
        coco_file.write_text(original)


@pytest.fixture(scope="module")
def yolo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_yolo_yaml(tmp_path_factory.mktemp("yolo"))


@FUZZ
@given(data=st.data())
def test_yolo_label_lines(yolo_root: Path, data: st.DataObject) -> None:
    label = yolo_root / "train" / "labels" / "a.txt"
    original = label.read_bytes()
    tokens = st.sampled_from(["0", "1", "-1", "7", "0.5", "1e400", "nan", "x", "", "0.2 0.3"])
    line = st.lists(tokens, max_size=7).map(" ".join)
    damaged = data.draw(byte_damage(original) | st.lists(line, max_size=3).map(_lines))
    try:
        label.write_bytes(damaged)
        _read_or_data_error(yolo_root, label)
    finally:
        label.write_bytes(original)


def _lines(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


@FUZZ
@given(data=st.data())
def test_data_yaml(yolo_root: Path, data: st.DataObject) -> None:
    path = yolo_root / "data.yaml"
    original = path.read_text()
    if data.draw(st.booleans()):
        damaged = data.draw(byte_damage(original.encode()))
    else:
        damaged = yaml.safe_dump(data.draw(type_damage(yaml.safe_load(original)))).encode()
    try:
        path.write_bytes(damaged)
        _read_or_data_error(yolo_root, path)
    finally:
        path.write_text(original)
