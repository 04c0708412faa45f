"""The package's layers (docs/architecture.md), checked on the source and at run time.

Every ``import`` counts, wherever it is: at module level, inside a function, or under
``TYPE_CHECKING``. A module may import from a lower layer, or from its own group; the only
sideways edges between groups of one layer are :data:`SIDEWAYS`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ssdcli"

LAYERS: list[list[str]] = [
    [
        "ssdcli",
        "ssdcli.errors",
        "ssdcli.paths",
        "ssdcli.recipe_io",
        "ssdcli.config",
        "ssdcli.device",
        "ssdcli.console",
        "ssdcli.atomic",
        "ssdcli.reporting",
        "ssdcli.run_folder",
    ],
    ["ssdcli.boxes", "ssdcli.priors"],
    ["ssdcli.matcher", "ssdcli.loss", "ssdcli.nms", "ssdcli.postprocess"],
    ["ssdcli.metrics"],
    ["ssdcli.model", "ssdcli.data"],
    ["ssdcli.viz", "ssdcli.coverage"],
    ["ssdcli.checkpoint"],
    ["ssdcli.infer"],
    [
        "ssdcli.train",
        "ssdcli.evaluate",
        "ssdcli.detect",
        "ssdcli.export",
        "ssdcli.inspect",
        "ssdcli.prepare_data",
    ],
    ["ssdcli.benchmark"],
    ["ssdcli.cli"],
    ["ssdcli.__main__"],
]
"""Lowest first. Each entry is a group: a module, or a package with everything under it.
The modules of layers 0-2 are one group per layer (the core modules may use each other)."""

SIDEWAYS = {("ssdcli.train", "ssdcli.evaluate"), ("ssdcli.export", "ssdcli.evaluate")}
"""Edges allowed between groups of one layer: training and export evaluate models."""

ONE_GROUP_LAYERS = {0, 1, 2}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every module under ``root``.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module.
    """
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    prefix = root.name
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name and m.split(".")[0] == prefix}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def place(module: str) -> tuple[int, str]:
    """``(layer, group)`` of a module; KeyError for one that no layer names."""
    for layer, groups in enumerate(LAYERS):
        for group in groups:
            # "ssdcli" names the package's own __init__ only, not everything under it.
            inside = module == group or (group != "ssdcli" and module.startswith(group + "."))
            if inside:
                return layer, f"layer{layer}" if layer in ONE_GROUP_LAYERS else group
    raise KeyError(module)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        src_layer, src_group = place(source)
        for target in targets:
            dst_layer, dst_group = place(target)
            allowed = dst_layer < src_layer or dst_group == src_group
            if not allowed and (src_group, dst_group) not in SIDEWAYS:
                bad.append(f"{source} (layer {src_layer}) imports {target} (layer {dst_layer})")
    return sorted(bad)


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in import_graph(PACKAGE):
        try:
            place(module)
        except KeyError:
            unplaced.append(module)
    assert unplaced == []


def test_no_import_cycle() -> None:
    assert find_cycles(import_graph(PACKAGE)) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "metrics").glob("*.py")), ids=lambda p: p.name)
def test_metrics_import_no_torch(path: Path) -> None:
    """metrics/ stays numpy and pycocotools only: importing it costs no torch."""
    found = import_graph_names(path)
    assert {n for n in found if n.split(".")[0] in ("torch", "torchvision")} == set()


def import_graph_names(path: Path) -> set[str]:
    """Every absolute module named by an import anywhere in ``path`` (the package's or not)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imports_only_go_down_the_layers() -> None:
    assert layer_violations(import_graph(PACKAGE)) == []


DATA_ROOMS: dict[str, set[str]] = {
    "ssdcli.data.records": set(),
    "ssdcli.data.images": set(),
    "ssdcli.data.readers": {"ssdcli.data.records", "ssdcli.data.images"},
    "ssdcli.data.prepare": {"ssdcli.data.records", "ssdcli.data.images", "ssdcli.data.readers"},
    "ssdcli.data.pipeline": {"ssdcli.data.records", "ssdcli.data.images"},
}
"""Inside ``ssdcli.data`` (one group of the layers above): each room and what it may import
besides itself. The shared modules (records, images) are lowest; readers build on them; prepare
(layout detection, splits, the manifest) on the readers; the pipeline (torch) needs only the
shared modules, and nothing below it needs the pipeline. The package's ``__init__`` loads names
lazily (importlib) and is not a room."""

NO_TORCH_ROOMS = (
    "ssdcli.data.records",
    "ssdcli.data.images",
    "ssdcli.data.readers",
    "ssdcli.data.prepare",
)


def data_room(module: str) -> str | None:
    """The room of a module of ``ssdcli.data``; None for modules outside it (and its
    ``__init__``); KeyError for a module of ``ssdcli.data`` that no room names."""
    if not module.startswith("ssdcli.data."):
        return None
    for room in DATA_ROOMS:
        if module == room or module.startswith(room + "."):
            return room
    raise KeyError(module)


def data_room_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        src = data_room(source)
        if src is None:
            continue
        for target in targets:
            dst = data_room(target)
            if dst is not None and dst != src and dst not in DATA_ROOMS[src]:
                bad.append(f"{source} ({src}) imports {target} ({dst})")
    return sorted(bad)


def test_every_data_module_has_a_room() -> None:
    unplaced = []
    for module in import_graph(PACKAGE):
        try:
            data_room(module)
        except KeyError:
            unplaced.append(module)
    assert unplaced == []


def test_data_rooms_import_only_the_rooms_below() -> None:
    assert data_room_violations(import_graph(PACKAGE)) == []


def test_data_rooms_below_the_pipeline_import_no_torch() -> None:
    """Reading and preparing a data set costs no torch (``ssd prepare-data``, ``--help``)."""
    offenders = {}
    for path in sorted((PACKAGE / "data").rglob("*.py")):
        module = module_name(path, PACKAGE)
        if module.startswith(NO_TORCH_ROOMS):
            torch_names = {n for n in import_graph_names(path) if n.split(".")[0] == "torch"}
            if torch_names:
                offenders[module] = sorted(torch_names)
    assert offenders == {}


def test_the_data_room_check_catches_an_upward_edge(tmp_path) -> None:
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "",
            "data/records.py": "",
            "data/readers/__init__.py": "",
            "data/readers/voc.py": "from ssdcli.data.prepare.layout import open_dataset\n",
            "data/prepare/__init__.py": "",
            "data/prepare/layout.py": "def f():\n    from ssdcli.data.pipeline.loader import g\n",
            "data/pipeline/__init__.py": "",
            "data/pipeline/loader.py": "from ssdcli.data.records import Manifest\n",
        },
    )
    assert data_room_violations(import_graph(package)) == [
        "ssdcli.data.prepare.layout (ssdcli.data.prepare) imports ssdcli.data.pipeline.loader "
        "(ssdcli.data.pipeline)",
        "ssdcli.data.readers.voc (ssdcli.data.readers) imports ssdcli.data.prepare.layout "
        "(ssdcli.data.prepare)",
    ]


def test_detect_sources_lives_with_detect() -> None:
    """``ssd detect``'s input handling is part of the detect group, not of the data layer."""
    graph = import_graph(PACKAGE)
    assert "ssdcli.detect.sources" in graph
    assert place("ssdcli.detect.sources") == (8, "ssdcli.detect")
    assert not any(name.startswith("ssdcli.data.sources") for name in graph)


def _write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "ssdcli"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return package


def test_the_checks_catch_a_cycle_hidden_in_a_function_or_type_checking(tmp_path) -> None:
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "train/__init__.py": "",
            "train/setup.py": "from ssdcli.train import state\n",
            "train/state.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from ssdcli.train.setup import Parts
                """,
            "infer/__init__.py": "",
            "infer/base.py": "def f():\n    from ssdcli.infer.open import g\n",
            "infer/open.py": "from ssdcli.infer.base import f\n",
        },
    )
    cycles = find_cycles(import_graph(package))
    assert cycles == [
        ["ssdcli.infer.base", "ssdcli.infer.open"],
        ["ssdcli.train.setup", "ssdcli.train.state"],
    ]


def test_the_checks_catch_an_upward_edge(tmp_path) -> None:
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "viz/__init__.py": "",
            "viz/plots.py": "def f():\n    from ssdcli.evaluate.run import g\n",
            "evaluate/__init__.py": "",
            "evaluate/run.py": "from ssdcli.detect.run import h\n",
            "detect/__init__.py": "",
            "detect/run.py": "",
        },
    )
    assert layer_violations(import_graph(package)) == [
        "ssdcli.evaluate.run (layer 8) imports ssdcli.detect.run (layer 8)",
        "ssdcli.viz.plots (layer 5) imports ssdcli.evaluate.run (layer 8)",
    ]


def test_the_current_package_fails_when_a_cycle_is_added(tmp_path) -> None:
    """The real package, copied, with one import added that closes a loop."""
    import shutil

    copy = tmp_path / "ssdcli"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    boxes = copy / "boxes.py"
    boxes.write_text(boxes.read_text() + "\n\ndef _late():\n    from ssdcli.matcher import match\n")
    graph = import_graph(copy)
    assert ["ssdcli.boxes", "ssdcli.matcher"] in find_cycles(graph)
    assert "ssdcli.boxes (layer 1) imports ssdcli.matcher (layer 2)" in layer_violations(graph)


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions): what importing ``path`` costs."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_cli_modules_import_heavy_packages_lazily() -> None:
    heavy = ("torch", "torchvision", "ssdcli.model", "ssdcli.checkpoint", "ssdcli.infer")
    heavy += tuple(LAYERS[8])
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _top_level_imports(path) if name.startswith(heavy)
        )
        for path in (PACKAGE / "cli").glob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    "code",
    [
        "from typer.testing import CliRunner\n"
        "from ssdcli.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n",
        "import ssdcli.config\n",
    ],
    ids=["ssd --help", "ssdcli.config"],
)
def test_imports_no_torch(code: str) -> None:
    probe = "import sys\n" + code + "print('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_architecture_page_names_the_same_layers() -> None:
    """docs/architecture.md's layer table and :data:`LAYERS` describe the same layers."""
    import re

    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", page, flags=re.MULTILINE)
    documented = {
        int(layer): sorted(
            "ssdcli" if name == "ssdcli" else f"ssdcli.{name.rstrip('/')}"
            for name in re.findall(r"`([^`]+)`", groups)
        )
        for layer, groups in rows
    }
    assert documented == {layer: sorted(groups) for layer, groups in enumerate(LAYERS)}
