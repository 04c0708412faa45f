"""``ssd benchmark``: every asked format is a row (figures, or why not), scored like the
checkpoint; torchvision's twin computes the checkpoint's detections; JSON/CSV beside the exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdcli.benchmark import formats
from ssdcli.benchmark.run import BenchRequest
from ssdcli.benchmark.run import run as run_benchmark
from ssdcli.checkpoint.file import load_detector, make_payload, save_checkpoint
from ssdcli.cli.app import app
from ssdcli.config import recipe_from_dict, recipe_to_dict
from ssdcli.errors import UsageError
from ssdcli.model import build_detector

pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed: pip install 'ssdcli[export]'"
)

CLASSES = ["circle", "cross", "square", "star", "triangle"]  # the synthetic set's classes
TINY = {
    "model": {"backbone": "tiny", "size_hw": [128, 128], "width": 0.25},
    "priors": {"aspect_ratios": [[2]] * 6},
    "postprocess": {"score_threshold": 0.05, "max_detections": 50},
}


class _Quiet:
    """A reporter that keeps nothing."""

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random tiny checkpoint and a synthetic data set of 8 images (its manifest)."""
    from ssdcli.data.prepare.manifest import prepare_synthetic

    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    recipe = recipe_from_dict(TINY, "test")
    detector = build_detector(recipe, len(CLASSES))
    checkpoint = folder / "run" / "best.pt"
    checkpoint.parent.mkdir()
    save_checkpoint(
        checkpoint, make_payload(detector.model.state_dict(), recipe_to_dict(recipe), CLASSES)
    )
    prepare_synthetic(folder / "shapes", 8, 128, 0)
    return checkpoint, folder / "shapes" / "manifest.json"


def test_rows_files_and_scores(setup, tmp_path) -> None:
    checkpoint, manifest = setup
    wanted = ["onnx", "torchscript"]
    request = BenchRequest(
        model=checkpoint, formats=tuple(wanted), data=manifest, split="trainval",
        batches=(1, 2), threads=(1,), rounds=1, out=tmp_path, int8=False, min_seconds=0.0,
    )  # fmt: skip
    result = run_benchmark(request, _Quiet())
    names = [(row.name, row.precision) for row in result.rows]
    assert names[0] == ("PyTorch eager", "float32")
    assert names[1][0] == "PyTorch eager" and names[1][1].endswith("(default)")
    assert names[2:] == [("torchvision", "float32"), ("ONNX Runtime", "float32"),
                         ("TorchScript", "float32")]  # fmt: skip
    tv = result.rows[2]
    assert tv.status.startswith("unavailable: torchvision has no SSD with the tiny backbone")
    for row in [result.rows[0], *result.rows[3:]]:
        assert row.status == "ok", row.status
        assert set(row.ms_per_image) == {"b1/t1", "b2/t1"}
        assert all(ms > 0 for ms in row.ms_per_image.values())
        assert row.images_per_s == pytest.approx(1000 / min(row.ms_per_image.values()))
        assert 0.0 <= row.voc_map <= 1.0 and 0.0 <= row.coco_ap <= 1.0
        assert row.size_mb > 0 and row.load_s > 0
    # The exports verified against the checkpoint, so they score what it scores.
    for row in result.rows[3:]:
        assert row.check.startswith("verified") and Path(row.path).is_file()
        assert abs(row.map_diff) < 1e-3
    assert result.images == 8 and result.machine["cores"] >= 1
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert [r["name"] for r in data["rows"]] == [n for n, _ in names]
    with (tmp_path / "benchmark.csv").open() as file:
        lines = list(csv.DictReader(file))
    assert len(lines) == len(names) and float(lines[3]["ms_per_image_b2/t1"]) > 0


def test_missing_packages_are_rows_not_errors(setup, tmp_path, monkeypatch) -> None:
    checkpoint, _ = setup
    real = formats.importlib.util.find_spec
    absent = {"openvino", "litert_torch"}
    monkeypatch.setattr(
        formats.importlib.util, "find_spec", lambda name: None if name in absent else real(name)
    )
    request = BenchRequest(
        model=checkpoint, formats=("openvino", "tflite"), batches=(1,), rounds=1, out=tmp_path,
        torchvision=False, min_seconds=0.0,
    )  # fmt: skip
    rows = run_benchmark(request, _Quiet()).rows
    assert [row.status for row in rows[2:]] == [
        "not installed: pip install 'ssdcli[openvino]'",
        "not installed: pip install 'ssdcli[tflite]'",
    ]
    assert rows[0].voc_map is None  # no data: speed only


def test_option_parsing() -> None:
    assert formats.parse_formats(None) == list(formats.FORMATS)
    assert formats.parse_formats("OpenVINO, onnx") == ["openvino", "onnx"]
    assert formats.parse_ints("1 8", "--batches", [1]) == [1, 8]
    assert formats.parse_ints(None, "--threads", []) == []
    with pytest.raises(UsageError, match="--formats 'coreml'"):
        formats.parse_formats("onnx,coreml")
    with pytest.raises(UsageError, match="--batches '0'"):
        formats.parse_ints("1,0", "--batches", [1])


def test_cli_prints_the_table(setup, tmp_path) -> None:
    checkpoint, manifest = setup
    args = ["benchmark", str(checkpoint), "--formats", "onnx", "--data", str(manifest)]
    args += ["--split", "trainval", "--batches", "1", "--rounds", "1", "--no-int8"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ONNX Runtime" in result.output and "PyTorch eager" in result.output
    assert (tmp_path / "benchmark.json").is_file() and (tmp_path / "benchmark.csv").is_file()
    bad = CliRunner().invoke(app, ["benchmark", str(checkpoint), "--formats", "coreml"])
    assert bad.exit_code == 2 and "coreml" in bad.output


def test_torchvision_twin_holds_the_checkpoint_weights(tmp_path) -> None:
    """SSDLite320 with random weights, imported into ssdcli; the twin built back from the
    checkpoint (torchvision's own network) must compute the checkpoint's head outputs."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    from ssdcli.benchmark.torchvision_twin import TorchvisionTwin
    from ssdcli.config import Recipe, override_recipe
    from ssdcli.data import pattern_images
    from ssdcli.model.importers import import_torchvision

    torch.manual_seed(0)
    tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that their mapping matters
        for name, buffer in tv.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    imported = import_torchvision(tv.state_dict())
    recipe = override_recipe(Recipe(), imported.recipe_overrides)
    path = tmp_path / "best.pt"
    save_checkpoint(
        path, make_payload(imported.state_dict, recipe_to_dict(recipe), imported.class_names)
    )
    loaded = load_detector(path, device="cpu")
    twin = TorchvisionTwin(loaded)
    x = torch.randn(2, 3, 320, 320)
    with torch.no_grad():
        head = twin.model.head(list(twin.model.backbone(x).values()))
        cls_logits, box_deltas = loaded.detector.model.eval()(x)
    for got, want in ((head["cls_logits"], cls_logits), (head["bbox_regression"], box_deltas)):
        assert got.shape == want.shape
        assert float((got - want).abs().max()) <= 1e-4 * max(1.0, float(want.abs().max()))
    # Its detections come back in the checkpoint's label range and the image's pixels.
    images = pattern_images(1, seed=3)
    (found,) = twin.predict(images)
    height, width = images[0].shape[:2]
    assert len(found.scores_D) > 0 and int(found.labels_D.min()) >= 0
    assert int(found.labels_D.max()) < len(loaded.class_names)
    assert (
        float(found.boxes_D4[:, 2].max()) <= width and float(found.boxes_D4[:, 3].max()) <= height
    )
