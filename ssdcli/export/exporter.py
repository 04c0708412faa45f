"""``ssd export``: a checkpoint -> an ONNX, TorchScript, OpenVINO or TFLite file that verifies
itself.

Two forms in both formats (see :mod:`ssdcli.export.onnx_graph` and
:mod:`ssdcli.export.torchscript`):
``nms`` (decoding, score threshold, per-class NMS and top-k inside; outputs boxes, scores, labels,
count per image) and ``raw`` (head outputs plus the priors). The model description (class names,
input size, mean/std, channel order, prior settings, post-processing) is stored in the file.

The file is written under a temporary name next to the destination (:mod:`ssdcli.atomic`), run
with ONNX Runtime (or loaded back with ``torch.jit.load``) on sample images and compared with the
eager checkpoint: its network's head outputs, then the detections its post-processing determines
(near-ties at a cut-off set aside, :mod:`ssdcli.export.verify`); only an export that passes is
renamed to its final name.
``int8`` adds static quantization (:mod:`ssdcli.export.quantize` for ONNX,
:mod:`ssdcli.export.openvino_int8` for OpenVINO) and compares the float and int8 mAP@0.5 on a
manifest.

OpenVINO IRs (:mod:`ssdcli.export.openvino_file`) are the ONNX export converted by OpenVINO, in
both forms; TFLite files (:mod:`ssdcli.export.tflite_file`) hold the raw form only, with the
model description in a JSON file beside them. Files that come in pairs (``.xml`` + ``.bin``,
``.tflite`` + ``.tflite.json``) are written, checked, moved and removed together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdcli import __version__
from ssdcli.atomic import atomic_path, scratch_path
from ssdcli.errors import ExportError, UsageError
from ssdcli.export.onnx_file import finish_onnx, save_onnx
from ssdcli.export.verify import FLOAT16, FLOAT32, VerifyReport, sample_images, verify_export
from ssdcli.infer.model_info import ModelInfo
from ssdcli.infer.runtimes import require

if TYPE_CHECKING:
    import numpy as np

    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.export.quantize import Int8Report
    from ssdcli.export.verify import Tolerance

MIN_OPSET = 17
FORMATS = ("onnx", "torchscript", "openvino", "tflite")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript", "openvino": ".xml", "tflite": ".tflite"}
INT8_FORMATS = ("onnx", "openvino")
EXTRAS = {"onnx": "export", "torchscript": "export", "openvino": "openvino", "tflite": "tflite"}


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and measured.

    Attributes:
        path: the written file.
        fmt: ``"onnx"``, ``"torchscript"``, ``"openvino"`` or ``"tflite"``; form: ``"nms"`` or
            ``"raw"``.
        size_bytes: file size (with its companion: the IR's ``.bin``, a TFLite file's JSON).
        verify: eager vs exported comparison (of the float export when ``int8``).
        int8: float vs int8 accuracy on the calibration manifest, when quantized.
    """

    path: Path
    fmt: str
    form: str
    size_bytes: int
    verify: VerifyReport
    int8: Int8Report | None = None


def default_output(checkpoint: Path, fmt: str, with_nms: bool, int8: bool) -> Path:
    """``runs/x/best.pt`` -> ``runs/x/best.onnx`` (or ``best-raw``, ``.int8``, ``.torchscript``,
    ``.xml``, ``.tflite``)."""
    stem = checkpoint.name.removesuffix(".pt").removesuffix(".pth")
    stem += "" if with_nms else "-raw"
    stem += ".int8" if int8 else ""
    return checkpoint.with_name(stem + SUFFIXES[fmt])


def model_info(loaded: LoadedDetector, form: str, dynamic_batch: bool, **extra: Any) -> ModelInfo:
    """The description stored in an exported file."""
    from ssdcli.boxes import BoxCoder
    from ssdcli.postprocess import PostprocessSettings
    from ssdcli.priors import describe

    recipe = loaded.recipe
    detector = loaded.detector
    return ModelInfo(
        class_names=list(loaded.class_names),
        size_hw=tuple(recipe.model.size_hw),
        mean=tuple(recipe.model.input.mean),
        std=tuple(recipe.model.input.std),
        channel_order=recipe.model.input.channel_order,
        resize=recipe.model.resize,
        category_ids=loaded.category_ids,
        form=form,
        fixed_batch=None if dynamic_batch else 1,
        postprocess=PostprocessSettings.from_mapping(recipe.postprocess),
        variances=(float(recipe.priors.variances[0]), float(recipe.priors.variances[1])),
        max_log_scale=BoxCoder().max_log_scale,
        extra={
            "ssdcli_version": __version__,
            "priors": recipe.priors.model_dump(mode="json"),
            "levels": describe(detector.levels, detector.size_hw),
            "num_priors": int(detector.priors_P4.shape[0]),
            "backbone": recipe.model.backbone,
            "input": "images: float32 [B, 3, H, W], (pixel - mean) / std in channel_order",
            "box_format": "xyxy normalised to [0, 1] of the input image",
            **extra,
        },
    )


def export_model(
    checkpoint: str | Path,
    out: str | Path | None = None,
    fmt: str | None = None,
    with_nms: bool | None = None,
    dynamic_batch: bool | None = None,
    opset: int | None = None,
    half: bool = False,
    int8: bool = False,
    calibration: str | Path | None = None,
    calibration_images: int = 64,
    log: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Export a checkpoint and verify the file.

    Args:
        checkpoint: an ssdcli checkpoint.
        out: destination; None = next to the checkpoint (:func:`default_output`).
        fmt, with_nms, dynamic_batch, opset: None = the checkpoint recipe's ``export`` section.
        half: run the network in float16 (input and outputs stay float32).
        int8: static quantization calibrated on ``calibration`` (a manifest.json): ONNX
            Runtime's for ONNX, NNCF's for OpenVINO.
        calibration_images: images of the manifest used for calibration.
        log: receives one line per step.

    Raises:
        UsageError: incompatible options (int8 without a manifest or with TorchScript or
            TFLite, opset < 17, TFLite with NMS, a dynamic batch or half, an OpenVINO ``out``
            that is not ``.xml``).
        ExportError: a missing package (onnx, onnxruntime, openvino, nncf, litert-torch), a
            failing export, or a file outside tolerance (the file is removed).
    """
    from ssdcli.checkpoint.file import load_detector

    checkpoint = Path(checkpoint)
    loaded = load_detector(checkpoint, device="cpu")
    cfg = loaded.recipe.export
    fmt = fmt or cfg.format
    if fmt == "tflite" and with_nms:
        raise UsageError(
            "--format tflite writes the raw outputs only (post-processing runs on the host); "
            "pass --raw"
        )
    with_nms = (cfg.with_nms and fmt != "tflite") if with_nms is None else with_nms
    if fmt == "tflite" and dynamic_batch:
        raise UsageError("--format tflite takes one image per call; drop --dynamic-batch")
    dynamic_batch = (
        cfg.dynamic_batch and fmt != "tflite" if dynamic_batch is None else dynamic_batch
    )
    opset = int(opset or max(cfg.opset, MIN_OPSET))
    _check_options(fmt, opset, half, int8, calibration)
    _require_packages(fmt, int8)
    target = Path(out) if out is not None else default_output(checkpoint, fmt, with_nms, int8)
    if fmt == "openvino" and target.suffix.lower() != ".xml":
        raise UsageError(f"--out {target}: an OpenVINO IR is an .xml file (its .bin beside it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    form = "nms" if with_nms else "raw"
    extra = {"format": fmt, "half": half, "int8": False, "checkpoint": checkpoint.name}
    if fmt in ("onnx", "openvino"):
        extra["opset"] = opset
    info = model_info(loaded, form, dynamic_batch, **extra)
    if int8:
        from ssdcli.export.quantize import load_calibration

        load_calibration(Path(calibration), info.class_names)  # fail early on a wrong manifest
    images = sample_images(calibration or _recipe_manifest(loaded, checkpoint.parent), log=log)
    # An IR finds its .bin and a .tflite its JSON by the suffix: their temporary names keep it.
    keep = target.suffix.lower() in (".xml", ".tflite")
    tolerance = FLOAT16 if half else FLOAT32
    log(f"exporting {checkpoint} to {fmt} ({form}{', float16' if half else ''})")
    if not int8:
        with atomic_path(target, tag="export", keep_suffix=keep, group=companions) as tmp:
            _write(loaded, info, tmp, fmt, opset, dynamic_batch, half)
            report = _verify(loaded, tmp, fmt, images, dynamic_batch, tolerance, log)
        int8_report = None
    else:
        with (
            scratch_path(target, "float", keep_suffix=keep, group=companions) as float_tmp,
            atomic_path(target, tag="int8", keep_suffix=keep, group=companions) as int8_tmp,
        ):
            _write(loaded, info, float_tmp, fmt, opset, dynamic_batch, half)
            report = _verify(loaded, float_tmp, fmt, images, dynamic_batch, tolerance, log)
            if fmt == "openvino":
                from ssdcli.export.openvino_int8 import export_openvino_int8 as export_int8
            else:
                from ssdcli.export.quantize import export_int8

            info.extra["int8"] = True
            int8_report = export_int8(
                loaded, info, float_tmp, int8_tmp, Path(calibration), calibration_images, log
            )
    size = sum(p.stat().st_size for p in companions(target) if p.is_file())
    return ExportResult(target, fmt, form, size, report, int8_report)


def companions(path: Path) -> list[Path]:
    """``path`` and the files that belong to it: an IR's ``.bin``, a TFLite file's JSON
    metadata."""
    if path.suffix.lower() == ".xml":
        return [path, path.with_suffix(".bin")]
    if path.suffix.lower() == ".tflite":
        from ssdcli.infer.litert_runtime import metadata_path

        return [path, metadata_path(path)]
    return [path]


def _require_packages(fmt: str, int8: bool) -> None:
    """Fail early, naming the extra to install, when the format's packages are missing."""
    needed = {
        "onnx": ["onnx", "onnxruntime"],
        "torchscript": [],
        "openvino": ["onnx", "openvino"] + (["nncf"] if int8 else []),
        "tflite": ["litert_torch", "ai_edge_litert"],
    }[fmt]
    for module in needed:
        require(module, "export" if module in ("onnx", "onnxruntime") else EXTRAS[fmt])


def _recipe_manifest(loaded: LoadedDetector, run_dir: Path) -> Path | None:
    """The manifest of the checkpoint's training data, when it is on this machine."""
    from ssdcli.data.prepare.manifest import locate_data

    data = locate_data(loaded.recipe.data, run_dir)
    for candidate in (data.manifest, Path(data.root) / "manifest.json"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _check_options(fmt: str, opset: int, half: bool, int8: bool, calibration: Any) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "onnx" and opset < MIN_OPSET:
        raise UsageError(f"--opset {opset}: exports need opset {MIN_OPSET} or newer")
    if int8 and fmt not in INT8_FORMATS:
        raise UsageError(
            "--int8 quantizes ONNX and OpenVINO exports only; "
            "use --format onnx or --format openvino"
        )
    if half and fmt == "tflite":
        raise UsageError("--half is not available for --format tflite; export float32")
    if int8 and half:
        raise UsageError("--int8 and --half exclude each other; choose one")
    if int8 and calibration is None:
        raise UsageError("--int8 needs --calibration MANIFEST (a manifest.json of your data)")
    if calibration is not None and not Path(calibration).exists():
        raise UsageError(f"--calibration {calibration}: no such manifest file")


def _write(
    loaded: LoadedDetector,
    info: ModelInfo,
    path: Path,
    fmt: str,
    opset: int,
    dynamic_batch: bool,
    half: bool,
) -> None:
    """Write the ``fmt`` file of ``loaded`` to ``path`` (a temporary name)."""
    try:
        if fmt == "onnx":
            from ssdcli.export.onnx_graph import network_to_onnx

            proto = network_to_onnx(loaded.detector.model, info.size_hw, opset, dynamic_batch, half)
            save_onnx(finish_onnx(proto, loaded, info), path)
        elif fmt == "openvino":
            from ssdcli.export.openvino_file import write_openvino

            write_openvino(loaded, info, path, opset, dynamic_batch, half)
        elif fmt == "tflite":
            from ssdcli.export.tflite_file import write_tflite

            write_tflite(loaded, info, path, dynamic_batch)
        else:
            from ssdcli.export.torchscript import write_torchscript

            write_torchscript(loaded, info, path, dynamic_batch, half)
    except (ExportError, UsageError):
        raise
    except Exception as error:  # exporters raise many types; name the step and the cause
        raise ExportError(
            f"{fmt} export failed: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from error


def _verify(
    loaded: LoadedDetector,
    path: Path,
    fmt: str,
    images: list[np.ndarray],
    dynamic_batch: bool,
    tolerance: Tolerance,
    log: Callable[[str], None],
) -> VerifyReport:
    """Verify the file at ``path`` against the checkpoint (:mod:`ssdcli.export.verify`).

    Raises:
        ExportError: the file differs beyond ``tolerance``; the caller's temporary file is
            removed.
    """
    report = verify_export(loaded, path, images, dynamic_batch, tolerance)
    log(f"verified against eager PyTorch: {report.summary()}")
    if not report.passed:
        raise ExportError(
            f"the exported {fmt} model differs from the checkpoint: "
            f"{'; '.join(report.problems)} (compared {report.summary()}); the file was "
            "removed. Try another --opset, or without --half; report the problem if it "
            "persists"
        )
    return report
