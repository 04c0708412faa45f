"""Export verification: early checkpoints (thousands of near-tied scores) verify; real faults fail.

The models are trained for a few iterations by a direct loop (the real matcher and loss on one
fixed batch of random boxes): far faster than ``ssd train`` here, and the same near-tie regime.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdcli.checkpoint.file import make_payload, save_checkpoint
from ssdcli.config import recipe_from_dict, recipe_to_dict
from ssdcli.errors import ExportError
from ssdcli.export import exporter as export_module
from ssdcli.export.verify.determined import explain_differences, image_candidates
from ssdcli.postprocess import PostprocessSettings

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

EXTRA_PACKAGES = {  # formats beyond the export extra: (module, extra that installs it)
    "openvino": [("openvino", "openvino")],
    "tflite": [("litert_torch", "tflite"), ("ai_edge_litert", "tflite")],
}
FORMATS = ["onnx", "torchscript", "openvino", "tflite"]


def _need(fmt: str) -> None:
    """Skip, saying what to install, when the format's optional packages are missing."""
    for module, extra in EXTRA_PACKAGES.get(fmt, []):
        pytest.importorskip(
            module, reason=f"{module} is not installed: pip install 'ssdcli[{extra}]'"
        )


CLASSES = ["circle", "cross", "square"]
RECIPE = {
    "model": {"backbone": "tiny", "size_hw": [128, 128], "width": 0.25},
    "priors": {"aspect_ratios": [[2]] * 6},
}


def _train_and_snapshot(folder: Path, milestones: list[int], seed: int) -> dict[int, Path]:
    """A tiny detector trained (AdamW, lr 1e-3) on one batch of 4 random images with 3 random
    boxes each, saved as an ssdcli checkpoint after each of ``milestones`` iterations.

    Returns:
        ``{iterations: checkpoint path}``.
    """
    from ssdcli.boxes import BoxCoder
    from ssdcli.loss import MultiBoxLoss
    from ssdcli.matcher import encode_matched, match
    from ssdcli.model import build_detector

    torch.manual_seed(seed)
    recipe = recipe_from_dict(RECIPE, "test")
    detector = build_detector(recipe, len(CLASSES))
    model = detector.model.train()
    images_BCHW = torch.randn(4, 3, 128, 128)
    corner_BG2 = torch.rand(4, 3, 2) * 0.6
    boxes_BG4 = torch.cat([corner_BG2, corner_BG2 + 0.1 + torch.rand(4, 3, 2) * 0.3], dim=-1)
    labels_BG = torch.randint(0, len(CLASSES), (4, 3))
    matched_BP = match(boxes_BG4, torch.ones(4, 3, dtype=torch.bool), detector.priors_P4)
    labels_BP, deltas_BP4 = encode_matched(
        matched_BP, boxes_BG4, labels_BG, detector.priors_P4, BoxCoder()
    )
    criterion = MultiBoxLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    saved = {}
    for iteration in range(1, max(milestones) + 1):
        cls_logits_BPK, box_deltas_BP4 = model(images_BCHW)
        loss = criterion(cls_logits_BPK, box_deltas_BP4, labels_BP, deltas_BP4).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration in milestones:
            path = folder / f"seed{seed}-it{iteration}.pt"
            payload = make_payload(model.state_dict(), recipe_to_dict(recipe), CLASSES)
            save_checkpoint(path, payload)
            saved[iteration] = path
    return saved


MILESTONES = [5, 10, 20, 50, 100]


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[int, Path]]:
    """Checkpoints after 5 ... 100 iterations of two seeds: ``{seed: {iterations: path}}``."""
    folder = tmp_path_factory.mktemp("snapshots")
    return {seed: _train_and_snapshot(folder, MILESTONES, seed) for seed in (0, 1)}


@pytest.fixture(scope="module")
def early_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained for 10 iterations: thousands of near-tied scores."""
    return _train_and_snapshot(tmp_path_factory.mktemp("early"), [10], 0)[10]


@pytest.mark.slow
@pytest.mark.parametrize("iterations", MILESTONES)
@pytest.mark.parametrize("seed", [0, 1])
def test_early_checkpoints_verify_and_are_written(snapshots, tmp_path, iterations, seed) -> None:
    checkpoint = snapshots[seed][iterations]
    fmt = "onnx" if seed == 0 else "torchscript"  # both formats over the ten exports
    out = tmp_path / f"m.{fmt}"
    result = export_module.export_model(checkpoint, out, fmt=fmt)
    report = result.verify
    assert out.is_file(), report.problems
    assert report.passed and report.problems == []
    assert report.detections > 0 and report.raw_rel < 1e-4
    # The replay of the ties agrees with the checkpoint's own post-processing.
    assert report.reference_unexplained == 0
    assert "set aside as near-ties" in report.summary()


def test_the_onnx_export_of_an_early_checkpoint_sets_ties_aside(early_checkpoint, tmp_path):
    result = export_module.export_model(early_checkpoint, tmp_path / "m.onnx", fmt="onnx")
    assert result.verify.passed, result.verify.problems
    assert result.verify.detections > 100
    assert result.verify.missing == result.verify.extra == 0


# -- deliberate faults: each must fail, naming what differs, and leave no file --------------------


def _expect_failure(checkpoint: Path, out: Path, fmt: str, *phrases: str) -> str:
    with pytest.raises(ExportError) as caught:
        export_module.export_model(
            checkpoint, out, fmt=fmt, with_nms=False if fmt == "tflite" else None
        )
    message = str(caught.value)
    for phrase in phrases:
        assert phrase in message, message
    assert "set aside" in message  # says what was compared
    assert not out.exists() and list(out.parent.iterdir()) == []
    return message


def _patch_info(monkeypatch, change) -> None:
    original = export_module.model_info

    def patched(*args, **kwargs):
        info = original(*args, **kwargs)
        change(info)
        return info

    monkeypatch.setattr(export_module, "model_info", patched)


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_mean_std_fails(early_checkpoint, tmp_path, monkeypatch, fmt) -> None:
    _need(fmt)

    def change(info):
        info.mean, info.std = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)

    _patch_info(monkeypatch, change)
    message = _expect_failure(
        early_checkpoint, tmp_path / _name(fmt), fmt, "input preprocessing differs", "head outputs"
    )
    assert "mean [0, 0, 0] instead of [123.675" in message


def _name(fmt: str) -> str:
    return "m" + export_module.SUFFIXES[fmt]


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_swapped_channels_fail(early_checkpoint, tmp_path, monkeypatch, fmt) -> None:
    _need(fmt)
    _patch_info(monkeypatch, lambda info: setattr(info, "channel_order", "bgr"))
    _expect_failure(
        early_checkpoint, tmp_path / _name(fmt), fmt, "channel_order bgr instead of rgb"
    )


def _patch_loaded(monkeypatch, target, name: str, position: int, change) -> None:
    """Wrap ``target.name`` so that it writes from a copy of the checkpoint (its argument at
    ``position``) changed by ``change(loaded)``, as a faulty exporter would."""
    import copy

    original = getattr(target, name)

    def patched(*args, **kwargs):
        wrong = copy.copy(args[position])
        wrong.detector = copy.copy(wrong.detector)
        change(wrong)
        args = (*args[:position], wrong, *args[position + 1 :])
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, patched)


@pytest.mark.parametrize("fmt", FORMATS)
def test_permuted_priors_fail(early_checkpoint, tmp_path, monkeypatch, fmt) -> None:
    _need(fmt)

    def permute(loaded):
        priors = loaded.detector.priors_P4
        generator = torch.Generator().manual_seed(0)
        loaded.detector.priors_P4 = priors[torch.randperm(len(priors), generator=generator)]

    if fmt == "onnx":
        _patch_loaded(monkeypatch, export_module, "finish_onnx", 1, permute)
    elif fmt == "openvino":
        from ssdcli.export import openvino_file

        _patch_loaded(monkeypatch, openvino_file, "finish_onnx", 1, permute)
    elif fmt == "tflite":
        from ssdcli.export import tflite_file

        _patch_loaded(monkeypatch, tflite_file, "write_tflite", 0, permute)
    else:
        from ssdcli.export import torchscript

        _patch_loaded(monkeypatch, torchscript, "write_torchscript", 0, permute)
    _expect_failure(
        early_checkpoint, tmp_path / _name(fmt), fmt, "post-processing differs", "box decoding"
    )


def test_wrong_variances_fail(early_checkpoint, tmp_path, monkeypatch) -> None:
    _patch_info(monkeypatch, lambda info: setattr(info, "variances", (0.2, 0.1)))
    _expect_failure(
        early_checkpoint, tmp_path / "m.onnx", "onnx", "post-processing differs", "box decoding"
    )


def test_wrong_nms_iou_fails(early_checkpoint, tmp_path, monkeypatch) -> None:
    # The file's NMS keeps boxes overlapping up to IoU 0.9 where the checkpoint's stops at 0.45.
    _patch_info(
        monkeypatch,
        lambda info: setattr(info, "postprocess", replace(info.postprocess, nms_iou=0.9)),
    )
    _expect_failure(early_checkpoint, tmp_path / "m.onnx", "onnx", "NMS differs")


def test_broken_nms_node_fails(early_checkpoint, tmp_path, monkeypatch) -> None:
    # center_point_box=1 makes NonMaxSuppression read the xyxy boxes as cx, cy, w, h.
    original = export_module.finish_onnx

    def broken(proto, loaded, info):
        proto = original(proto, loaded, info)
        (node,) = [n for n in proto.graph.node if n.op_type == "NonMaxSuppression"]
        node.attribute.append(onnx.helper.make_attribute("center_point_box", 1))
        return proto

    monkeypatch.setattr(export_module, "finish_onnx", broken)
    _expect_failure(early_checkpoint, tmp_path / "m.onnx", "onnx", "post-processing differs")


# -- the tie rules on hand-made candidates -------------------------------------------------------


def _two_priors(score_a: float, score_b: float, overlap: bool):
    """Logits of two priors, one foreground class with the given scores; boxes overlapping at
    IoU 0.8 or apart."""
    logits = torch.tensor(
        [[0.0, float(np.log(s / (1 - s)))] for s in (score_a, score_b)], dtype=torch.float32
    )
    priors = torch.tensor(
        [[0.3, 0.3, 0.2, 0.2], [0.31 if overlap else 0.7, 0.3, 0.2, 0.2]], dtype=torch.float32
    )
    from ssdcli.boxes import BoxCoder

    cutoffs = PostprocessSettings(
        score_threshold=0.01, nms_iou=0.45, pre_nms_top_k=10, max_detections=10
    )
    cands = image_candidates(
        logits, torch.zeros(2, 4), priors, BoxCoder(), cutoffs, (100, 100), eps=1e-6
    )
    return cands, cutoffs


def test_a_tied_overlapping_pair_explains_either_survivor() -> None:
    cands, cutoffs = _two_priors(0.5, 0.5 + 1e-7, overlap=True)
    differs = np.array([True, True])
    floor = np.full(2, -np.inf, np.float32)
    assert explain_differences(cands, differs, floor, cutoffs, 1e-6, 1e-4).all()


def test_a_clear_nms_decision_is_not_a_tie() -> None:
    # Scores 0.6 and 0.5, IoU 0.8: the second is surely suppressed; outputting it is a fault.
    cands, cutoffs = _two_priors(0.6, 0.5, overlap=True)
    differs = np.array([False, True])
    floor = np.full(2, -np.inf, np.float32)
    assert not explain_differences(cands, differs, floor, cutoffs, 1e-6, 1e-4)[1]


def test_a_score_at_the_threshold_is_a_tie() -> None:
    cands, cutoffs = _two_priors(0.6, 0.01 + 2e-7, overlap=False)
    assert cands.near_cut_N.tolist() == [False, True]
