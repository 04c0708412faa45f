"""Checkpoint files: atomic writes, weights_only reads, refusal of pickled code, version checks."""

from __future__ import annotations

import pathlib
import random

import numpy as np
import pytest
import torch

from ssdcli.checkpoint import file as checkpoint
from ssdcli.checkpoint.file import (
    FORMAT_VERSION,
    load_checkpoint,
    make_payload,
    read_weights_file,
    save_checkpoint,
)
from ssdcli.checkpoint.rng import capture_rng_state, restore_rng_state
from ssdcli.errors import CheckpointError


class _TouchOnLoad:
    """Unpickling this object would create ``marker``: proof that code ran during a load."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _payload() -> dict:
    state = {"conv.weight": torch.arange(6.0).reshape(2, 3), "conv.bias": torch.tensor([1.0, -1.0])}
    return make_payload(
        state,
        recipe={"model": {"backbone": "tiny", "size_hw": [160, 160]}},
        class_names=["cat", "dog"],
        category_ids=[17, 18],
        iteration=7,
        optimizer={"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1}]},
    )


def test_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "run" / "last.pt"
    save_checkpoint(path, _payload())
    loaded = load_checkpoint(path)
    assert loaded["format_version"] == FORMAT_VERSION
    assert loaded["class_names"] == ["cat", "dog"]
    assert loaded["category_ids"] == [17, 18]
    assert loaded["iteration"] == 7
    assert loaded["recipe"]["model"]["size_hw"] == [160, 160]
    assert torch.equal(loaded["model"]["conv.weight"], torch.arange(6.0).reshape(2, 3))
    assert loaded["optimizer"]["state"][0]["step"].item() == 3.0
    # The file itself is readable by plain torch with weights_only=True.
    assert torch.load(path, weights_only=True)["model"]["conv.bias"].tolist() == [1.0, -1.0]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _payload())
    before = path.read_bytes()

    def broken_save(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*No space left"):
        save_checkpoint(path, _payload())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_numpy_scalars_become_python_scalars(tmp_path):
    payload = _payload()
    payload["best_metric"] = np.float64(0.75)
    payload["counts"] = (np.int64(3), [np.float32(0.5)])
    save_checkpoint(tmp_path / "x.pt", payload)
    loaded = load_checkpoint(tmp_path / "x.pt")
    assert type(loaded["best_metric"]) is float and loaded["best_metric"] == 0.75
    assert loaded["counts"] == (3, [0.5]) and type(loaded["counts"][0]) is int


def test_non_plain_values_are_rejected_before_writing(tmp_path):
    payload = _payload()
    payload["rng"] = {"numpy": np.zeros(3)}
    with pytest.raises(TypeError, match=r"payload\['rng'\]\['numpy'\] holds a numpy.ndarray"):
        save_checkpoint(tmp_path / "x.pt", payload)
    assert list(tmp_path.iterdir()) == []


def test_pickled_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model": {}, "hook": _TouchOnLoad(marker)}, path)
    refused = "not written by ssdcli or contains pickled code"
    with pytest.raises(CheckpointError, match=refused) as info:
        load_checkpoint(path)
    assert "refusing to execute it" in str(info.value)
    assert info.value.exit_code == 1
    assert not marker.exists()


def test_unreadable_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, _payload())
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch file"):
        load_checkpoint(truncated)
    foreign = tmp_path / "state_dict.pth"
    torch.save({"backbone.0.weight": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="not an ssdcli checkpoint .*model.init"):
        load_checkpoint(foreign)
    assert set(read_weights_file(foreign)) == {"backbone.0.weight"}


def test_newer_format_is_refused_with_versions(tmp_path):
    path = tmp_path / "future.pt"
    payload = _payload()
    payload["format_version"] = FORMAT_VERSION + 1
    payload["ssdcli_version"] = "9.0.0"
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match=r"format 2 \(written by ssdcli 9.0.0\).*upgrade"):
        load_checkpoint(path)


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {**_payload(), "rng": capture_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(10)
    np.random.seed(20)
    torch.manual_seed(30)
    restore_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_load_detector_rebuilds_from_the_embedded_recipe(tmp_path):
    from ssdcli.checkpoint.file import load_detector
    from ssdcli.config import Recipe, override_recipe, recipe_to_dict
    from ssdcli.model import build_detector

    recipe = override_recipe(Recipe(), {"model.backbone": "tiny", "model.size_hw": [128, 160]})
    detector = build_detector(recipe, num_classes=2)
    path = tmp_path / "best.pt"
    payload = make_payload(
        detector.model.state_dict(), recipe_to_dict(recipe), ["cat", "dog"], [17, 18]
    )
    save_checkpoint(path, payload)
    loaded = load_detector(path)
    assert loaded.recipe == recipe
    assert (loaded.class_names, loaded.category_ids) == (["cat", "dog"], [17, 18])
    assert not loaded.detector.model.training
    assert torch.equal(loaded.detector.priors_P4, detector.priors_P4)
    images = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        expected = detector.model.eval()(images)
        actual = loaded.detector.model(images)
    assert all(torch.equal(a, b) for a, b in zip(actual, expected, strict=True))

    payload["model"] = {k: v for k, v in payload["model"].items() if "cls_head.0" not in k}
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match="do not fit the network its recipe describes"):
        load_detector(path)


def test_cli_refuses_pickled_code_with_exit_1(tmp_path):
    from typer.testing import CliRunner

    from ssdcli.cli.app import app

    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "hook": _TouchOnLoad(marker)}, path)
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 1
    assert "contains pickled code; refusing to execute it" in " ".join(result.output.split())
    assert not marker.exists()
