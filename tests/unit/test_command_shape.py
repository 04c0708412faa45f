"""Every command has one shape: a frozen, keyword-only request and ``run(request, reporter)`` in
``ssdcli/<package>/run.py``, re-exported by the package; run folders are named in one place."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from ssdcli.run_folder import named_run_dir, unique_run_dir

PACKAGE = Path(__file__).resolve().parents[2] / "ssdcli"

COMMANDS = {  # package -> its request type
    "prepare_data": "PrepareRequest",
    "train": "TrainRequest",
    "evaluate": "EvalRequest",
    "detect": "DetectRequest",
    "export": "ExportRequest",
    "inspect": "InspectRequest",
    "benchmark": "BenchRequest",
}


@pytest.mark.parametrize("package", sorted(COMMANDS))
def test_each_command_package_exposes_a_frozen_request_and_run(package: str) -> None:
    module = importlib.import_module(f"ssdcli.{package}.run")
    exported = importlib.import_module(f"ssdcli.{package}")
    request_type = getattr(module, COMMANDS[package])
    assert exported.run is module.run
    assert getattr(exported, COMMANDS[package]) is request_type
    assert list(inspect.signature(module.run).parameters) == ["request", "reporter"]
    params = request_type.__dataclass_params__
    assert params.frozen
    fields = dataclasses.fields(request_type)
    assert fields and all(f.kw_only for f in fields)


def test_a_request_is_built_with_keywords_and_cannot_change() -> None:
    from ssdcli.export import ExportRequest

    with pytest.raises(TypeError):
        ExportRequest(Path("best.pt"))  # type: ignore[misc]
    request = ExportRequest(checkpoint=Path("best.pt"), format="onnx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.format = "tflite"  # type: ignore[misc]


def test_training_runs_are_numbered_from_one(tmp_path: Path) -> None:
    assert unique_run_dir(tmp_path, "voc300", always_numbered=True) == tmp_path / "voc300-1"
    (tmp_path / "voc300-1").mkdir()
    (tmp_path / "voc300-2").mkdir()
    assert unique_run_dir(tmp_path, "voc300", always_numbered=True) == tmp_path / "voc300-3"


def test_detect_runs_take_the_bare_name_first(tmp_path: Path) -> None:
    assert unique_run_dir(tmp_path, "street", always_numbered=False) == tmp_path / "street"
    (tmp_path / "street").mkdir()
    assert unique_run_dir(tmp_path, "street", always_numbered=False) == tmp_path / "street-2"
    (tmp_path / "street-2").mkdir()
    assert unique_run_dir(tmp_path, "street", always_numbered=False) == tmp_path / "street-3"


def test_a_named_run_never_reuses_a_run(tmp_path: Path) -> None:
    from ssdcli.errors import UsageError

    (tmp_path / "taken").mkdir()
    assert named_run_dir(tmp_path, "taken") == tmp_path / "taken"  # empty: usable
    (tmp_path / "taken" / "recipe.yaml").write_text("{}")
    with pytest.raises(UsageError, match="already exists"):
        named_run_dir(tmp_path, "taken")
    assert named_run_dir(tmp_path, "taken", must_be_new=False) == tmp_path / "taken"
    with pytest.raises(UsageError, match="letters, digits"):
        named_run_dir(tmp_path, "a/b")


def test_only_rank_zero_is_the_main_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    from ssdcli.train.distributed import is_main_rank

    monkeypatch.delenv("RANK", raising=False)
    assert is_main_rank()
    monkeypatch.setenv("RANK", "0")
    assert is_main_rank()
    monkeypatch.setenv("RANK", "1")
    assert not is_main_rank()


def test_the_help_names_the_recipes_train_uses() -> None:
    from ssdcli.cli import train as cli_train
    from ssdcli.train import data_recipe

    assert cli_train.DEFAULT_RECIPE == data_recipe.DEFAULT_RECIPE
    assert cli_train.DATA_RECIPE == data_recipe.SCRATCH_RECIPE


SHARED_CLI = {"ssdcli.cli.common", "ssdcli.cli.render", "ssdcli.cli.plain_help"}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (PACKAGE / "cli").glob("*.py") if p.stem not in ("__init__", "app")),
    ids=lambda p: p.name,
)
def test_command_modules_import_no_other_command_module(path: Path) -> None:
    """Shared rendering lives in cli/render.py, not in another command's CLI module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if module and module.startswith("ssdcli.cli"):
            names.add(module)
    assert names <= SHARED_CLI
