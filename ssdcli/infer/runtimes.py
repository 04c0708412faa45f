"""Predictors for exported files: ONNX (run with ONNX Runtime) and TorchScript.

Both read the model description that ``ssd export`` stored in the file (class names, input size,
normalisation, form) and plug into :class:`~ssdcli.infer.eager.BasePredictor`, so they take the
same images and return the same :class:`~ssdcli.postprocess.Detections` as the checkpoint.

* ``"nms"`` files return padded detections; this module scales them to pixels of each original
  image and applies the caller's (stricter) score threshold and detection limit. The NMS IoU of such
  a file is fixed at export time.
* ``"raw"`` files return head outputs and priors; the batch is post-processed here with
  :class:`~ssdcli.postprocess.PostProcessor`, with the caller's settings.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ssdcli.boxes import frame_hw
from ssdcli.errors import CheckpointError, ExportError
from ssdcli.infer.base import BasePredictor
from ssdcli.infer.model_info import METADATA_KEY, ModelInfo, info_from_metadata

if TYPE_CHECKING:
    from ssdcli.postprocess import Detections, PostprocessOverrides


def require(module: str, extra: str = "export") -> ModuleType:
    """Import an optional dependency of export/inference, or explain how to install it.

    Args:
        module: the module to import.
        extra: the ssdcli extra that installs it (``export``, ``openvino``, ``tflite``).

    Raises:
        ExportError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ExportError(
            f"this needs the optional package {module.split('.')[0]!r}, which is not installed "
            f"({error}); install it with `pip install 'ssdcli[{extra}]'`"
        ) from error


class ExportedPredictor(BasePredictor):
    """Shared construction and output handling of exported files.

    Each runtime implements :meth:`file_outputs` (the file run as it is, public so that export
    verification can compare a file's own outputs with the checkpoint's); this class decodes them
    into :class:`~ssdcli.postprocess.Detections`.
    """

    def __init__(
        self,
        info: ModelInfo,
        overrides: PostprocessOverrides | None,
        batch_size: int,
        classes: Sequence[int] | None,
    ) -> None:
        from ssdcli.postprocess import PostprocessOverrides

        overrides = overrides or PostprocessOverrides()
        baked = info.postprocess
        self.notes: list[str] = []
        if info.form == "nms":
            # Post-processing inside the file is fixed: only a stricter threshold (applied to
            # its output) and a lower per-image limit can still be honoured.
            asked = overrides.score_threshold
            if asked is not None and asked < baked.score_threshold:
                self.notes.append(
                    f"this model keeps scores above {baked.score_threshold:g} (set at export); "
                    f"--threshold {asked:g} acts as {baked.score_threshold:g}"
                )
            if overrides.nms_iou is not None and abs(overrides.nms_iou - baked.nms_iou) > 1e-9:
                self.notes.append(
                    f"this model's NMS IoU is {baked.nms_iou:g} (set at export); "
                    "--nms-iou is ignored"
                )
            limit = overrides.max_detections
            overrides = replace(
                overrides,
                nms_iou=None,
                max_detections=None if limit is None else min(limit, baked.max_detections),
            )
        super().__init__(info, overrides.apply(baked), batch_size, classes)
        self._postprocessor: Any = None

    def file_outputs(self, batch_BCHW: np.ndarray) -> list[np.ndarray]:
        """The file's outputs on a preprocessed batch, before any decoding, in the file's order.

        Args:
            batch_BCHW (ndarray[B, 3, H, W], float32): inputs as :meth:`preprocess` makes them;
                ``B`` must equal the file's fixed batch when it has one (pad the last chunk).

        Returns:
            ``"nms"`` form: ``boxes_BD4`` (xyxy normalised to the input frame), ``scores_BD``,
            ``labels_BD``, ``count_B`` (detections are padded to ``D``). ``"raw"`` form:
            ``cls_logits_BPK`` (K = classes + background), ``box_deltas_BP4`` and ``priors_P4``
            (normalised cxcywh).
        """
        raise NotImplementedError

    def _forward(self, batch_BCHW: np.ndarray, sizes_hw: list[tuple[int, int]]) -> list[Detections]:
        n = batch_BCHW.shape[0]
        fixed = self.info.fixed_batch
        if fixed is not None and n < fixed:  # pad the last chunk to the model's fixed batch
            fill = np.zeros((fixed - n, *batch_BCHW.shape[1:]), dtype=batch_BCHW.dtype)
            batch_BCHW = np.concatenate([batch_BCHW, fill])
        outputs = self.file_outputs(batch_BCHW)
        if self.info.form == "nms":
            return self._from_padded(*(o[:n] for o in outputs), sizes_hw)
        return self._from_raw(outputs[0][:n], outputs[1][:n], outputs[2], sizes_hw)

    def _from_padded(
        self,
        boxes_BD4: np.ndarray,
        scores_BD: np.ndarray,
        labels_BD: np.ndarray,
        count_B: np.ndarray,
        sizes_hw: list[tuple[int, int]],
    ) -> list[Detections]:
        import torch

        from ssdcli.postprocess import Detections

        results = []
        for b, (height, width) in enumerate(sizes_hw):
            n = int(count_B[b])
            scores = scores_BD[b, :n]
            keep = np.flatnonzero(scores > self.settings.score_threshold)[: self._post_limit()]
            frame_h, frame_w = frame_hw((height, width), self.info.size_hw, self.info.resize)
            scale = np.array([frame_w, frame_h, frame_w, frame_h], dtype=np.float32)
            limit = np.array([width, height, width, height], dtype=np.float32)
            pixels = np.minimum(np.maximum(boxes_BD4[b, keep] * scale, 0.0), limit)
            results.append(
                Detections(
                    torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)),
                    torch.from_numpy(np.ascontiguousarray(scores[keep], dtype=np.float32)),
                    torch.from_numpy(np.ascontiguousarray(labels_BD[b, keep], dtype=np.int64)),
                )
            )
        return results

    def _from_raw(
        self,
        cls_logits_BPK: np.ndarray,
        box_deltas_BP4: np.ndarray,
        priors_P4: np.ndarray,
        sizes_hw: list[tuple[int, int]],
    ) -> list[Detections]:
        import torch

        from ssdcli.postprocess import PostProcessor

        if self._postprocessor is None:
            self._postprocessor = PostProcessor(
                torch.as_tensor(np.asarray(priors_P4), dtype=torch.float32),
                self.info.box_coder(),
                self.settings,
                self.info.resize,
                self.info.size_hw,
            )
        with torch.inference_mode():
            return self._postprocessor(
                torch.as_tensor(np.asarray(cls_logits_BPK), dtype=torch.float32),
                torch.as_tensor(np.asarray(box_deltas_BP4), dtype=torch.float32),
                sizes_hw,
                max_detections=self._post_limit(),
            )


class OnnxPredictor(ExportedPredictor):
    """An ONNX file written by ``ssd export``, run with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        device: ``"cuda..."`` uses ONNX Runtime's CUDA provider when installed, else the CPU.
        threads: intra-op threads (0 = ONNX Runtime's default).
        overrides: post-processing asked for at run time (None values = the file's settings).
        batch_size, classes: as :class:`~ssdcli.infer.base.BasePredictor`.

    Raises:
        ExportError: onnxruntime is not installed.
        CheckpointError: the file cannot be loaded or has no ssdcli metadata.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        overrides: PostprocessOverrides | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
        threads: int = 0,
    ) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if (
            str(device).startswith("cuda")
            and "CUDAExecutionProvider" in ort.get_available_providers()
        ):
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types
            raise CheckpointError(
                f"ONNX Runtime cannot load {path}: {str(error).splitlines()[0]}"
            ) from error
        meta = self.session.get_modelmeta().custom_metadata_map
        info = info_from_metadata(meta.get(METADATA_KEY, ""), "onnx", str(path))
        batch_dim = self.session.get_inputs()[0].shape[0]
        info.fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        super().__init__(info, overrides, batch_size, classes)

    def file_outputs(self, batch_BCHW: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: batch_BCHW})


class TorchScriptPredictor(ExportedPredictor):
    """A TorchScript file written by ``ssd export --format torchscript``.

    Args:
        path: the TorchScript file.
        device: torch device to load it on.
        overrides: post-processing asked for at run time (None values = the file's settings).
        batch_size, classes: as :class:`~ssdcli.infer.base.BasePredictor`.

    Raises:
        CheckpointError: the file cannot be loaded or has no ssdcli metadata.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        overrides: PostprocessOverrides | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
    ) -> None:
        import torch
        import torchvision  # noqa: F401 - registers torchvision::nms for the loaded module

        self.device = torch.device(device)
        files = {f"{METADATA_KEY}.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                self.module = torch.jit.load(
                    str(path), map_location=self.device, _extra_files=files
                )
        except Exception as error:  # torch.jit raises RuntimeError and friends
            raise CheckpointError(
                f"cannot load TorchScript file {path}: {str(error).splitlines()[0]}"
            ) from error
        text = files[f"{METADATA_KEY}.json"]
        text = text.decode() if isinstance(text, bytes) else text
        info = info_from_metadata(text, "torchscript", str(path))
        super().__init__(info, overrides, batch_size, classes)

    def file_outputs(self, batch_BCHW: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            outputs = self.module(torch.from_numpy(batch_BCHW).to(self.device))
        return [o.cpu().numpy() for o in outputs]
