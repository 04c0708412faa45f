"""Inference on decoded images, with one interface over three model formats.

* :class:`Predictor`: an ssdcli detector in eager PyTorch (from a checkpoint, or built in memory);
* :class:`~ssdcli.engine.runtimes.OnnxPredictor`: an exported ONNX file run with ONNX Runtime;
* :class:`~ssdcli.engine.runtimes.TorchScriptPredictor`: an exported TorchScript file.

All three take RGB uint8 images of any size, preprocess the batch with the one shared
``preprocess_image``, run the network and post-process the whole batch at once (decode + batched
NMS), and return one :class:`~ssdcli.postprocess.Detections` per image, in pixels of the original
image. :func:`open_predictor` picks the right one from a file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.engine.model_info import ModelInfo
from ssdcli.errors import CheckpointError, UsageError

if TYPE_CHECKING:
    import torch

    from ssdcli.config import Recipe
    from ssdcli.model import Detector
    from ssdcli.postprocess import Detections

__all__ = [
    "BasePredictor",
    "ModelInfo",
    "Predictor",
    "find_default_model",
    "model_format",
    "open_predictor",
]


class BasePredictor:
    """Common interface: ``predict(images_rgb) -> list[Detections]``.

    Subclasses implement :meth:`_forward` on a preprocessed batch. This class owns preprocessing,
    batching (``batch_size`` images per forward, or the model's fixed batch) and filtering by class.

    Args:
        info: the model's description.
        score_threshold: keep detections scoring strictly above this.
        nms_iou: per-class NMS IoU threshold.
        max_detections: at most this many detections per image.
        batch_size: images per forward pass.
        classes: keep only these labels (0..C-1); None keeps all.
    """

    def __init__(
        self,
        info: ModelInfo,
        score_threshold: float = 0.01,
        nms_iou: float = 0.45,
        max_detections: int = 200,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
    ) -> None:
        self.info = info
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)
        self.batch_size = max(1, int(info.fixed_batch or batch_size))
        self.classes = None if classes is None else sorted({int(c) for c in classes})

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def preprocess(self, images_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Batch of network inputs.

        Args:
            images_rgb: ``np.ndarray[h, w, 3]`` uint8 RGB images of any sizes.

        Returns:
            ``np.ndarray[B, 3, H, W]`` float32, normalised, at the model's ``size_hw``.
        """
        from ssdcli.data.transforms import preprocess_image

        info = self.info
        batch = np.empty((len(images_rgb), 3, *info.size_hw), dtype=np.float32)
        for i, image in enumerate(images_rgb):
            batch[i] = preprocess_image(
                image, info.size_hw, info.mean, info.std, info.channel_order
            )
        return batch

    def predict(
        self,
        images_rgb: Sequence[np.ndarray],
        sizes_hw: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        """Detect objects in decoded images.

        Args:
            images_rgb: ``np.ndarray[h, w, 3]`` uint8 RGB images of any sizes.
            sizes_hw: ``(H, W)`` of each original image when an image was decoded at a reduced
                size; None means each image's own size.

        Returns:
            One :class:`Detections` per image: ``boxes_D4`` xyxy float32 in pixels of the
            original image, ``scores_D`` float32, ``labels_D`` int64 0..C-1, best first.
        """
        if sizes_hw is None:
            sizes_hw = [(int(im.shape[0]), int(im.shape[1])) for im in images_rgb]
        if len(sizes_hw) != len(images_rgb):
            raise ValueError(f"{len(sizes_hw)} sizes for {len(images_rgb)} images")
        results: list[Detections] = []
        for start in range(0, len(images_rgb), self.batch_size):
            chunk = list(images_rgb[start : start + self.batch_size])
            sizes = list(sizes_hw[start : start + self.batch_size])
            results.extend(self._forward(self.preprocess(chunk), sizes))
        return [self._keep_classes(d) for d in results]

    def _forward(self, batch_BCHW: np.ndarray, sizes_hw: list[tuple[int, int]]) -> list[Detections]:
        raise NotImplementedError

    def _post_limit(self) -> int:
        """Detections per image to ask post-processing for: all of them when filtering classes,
        so that the best ``max_detections`` of the wanted classes survive."""
        return self.max_detections if self.classes is None else 1 << 30

    def _keep_classes(self, detections: Detections) -> Detections:
        if self.classes is None:
            return detections
        import torch

        from ssdcli.postprocess import Detections

        wanted = torch.as_tensor(self.classes, dtype=detections.labels_D.dtype)
        keep = torch.isin(detections.labels_D, wanted.to(detections.labels_D.device))
        keep = keep.nonzero().flatten()[: self.max_detections]  # detections are best first
        return Detections(
            detections.boxes_D4[keep], detections.scores_D[keep], detections.labels_D[keep]
        )


class Predictor(BasePredictor):
    """An ssdcli detector run in eager PyTorch.

    Args:
        detector: network (eval mode) and priors.
        recipe: the detector's recipe (input normalisation, size, post-processing defaults).
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        class_names: label names; default ``class0..``.
        category_ids: data-set ids per label, kept for COCO output.
        score_threshold, nms_iou, max_detections: None = the recipe's ``postprocess`` values.
        batch_size: images per forward pass.
        classes: keep only these labels (0..C-1).
        optimize: run a copy made by ``ssdcli.model.inference.optimize_for_inference``
            (channels-last; on the CPU also folded batch norms and fused conv + activation,
            measured faster by ``benchmarks/bench_infer.py``); same outputs within float32
            rounding.
    """

    def __init__(
        self,
        detector: Detector,
        recipe: Recipe,
        device: str | torch.device = "cpu",
        *,
        class_names: Sequence[str] | None = None,
        category_ids: Sequence[int] | None = None,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
        max_detections: int | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
        optimize: bool = True,
    ) -> None:
        import torch

        from ssdcli.boxes import BoxCoder
        from ssdcli.postprocess import PostProcessor

        pp = recipe.postprocess
        num_classes = int(detector.model.num_classes)
        names = list(class_names) if class_names is not None else None
        info = ModelInfo(
            class_names=names or [f"class{i}" for i in range(num_classes)],
            size_hw=tuple(recipe.model.size_hw),
            mean=tuple(recipe.model.input.mean),
            std=tuple(recipe.model.input.std),
            channel_order=recipe.model.input.channel_order,
            category_ids=None if category_ids is None else [int(i) for i in category_ids],
            postprocess=pp.model_dump(),
        )
        super().__init__(
            info,
            pp.score_threshold if score_threshold is None else score_threshold,
            pp.nms_iou if nms_iou is None else nms_iou,
            pp.max_detections if max_detections is None else max_detections,
            batch_size,
            classes,
        )
        self.device = torch.device(device)
        self.detector = detector
        self.model = detector.model.to(self.device).eval()
        if optimize:
            from ssdcli.model.inference import optimize_for_inference

            self.model = optimize_for_inference(self.model, self.device)
        self.postprocessor = PostProcessor(
            detector.priors_P4.to(self.device),
            BoxCoder(tuple(recipe.priors.variances)),
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
            max_detections=self.max_detections,
            pre_nms_top_k=pp.pre_nms_top_k,
        )

    def raw_outputs(self, batch_BCHW: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cls_logits_BPK, box_deltas_BP4)`` float32 for a preprocessed batch."""
        import torch

        with torch.inference_mode():
            images = torch.from_numpy(batch_BCHW).to(self.device)
            cls_logits_BPK, box_deltas_BP4 = self.model(images)
        return cls_logits_BPK.float(), box_deltas_BP4.float()

    def _forward(self, batch_BCHW: np.ndarray, sizes_hw: list[tuple[int, int]]) -> list[Detections]:
        import torch

        cls_logits_BPK, box_deltas_BP4 = self.raw_outputs(batch_BCHW)
        self.postprocessor.max_detections = self._post_limit()
        with torch.inference_mode():
            return [
                _to_cpu(d) for d in self.postprocessor(cls_logits_BPK, box_deltas_BP4, sizes_hw)
            ]


def _to_cpu(detections: Detections) -> Detections:
    from ssdcli.postprocess import Detections

    if detections.boxes_D4.device.type == "cpu":
        return detections
    return Detections(
        detections.boxes_D4.cpu(), detections.scores_D.cpu(), detections.labels_D.cpu()
    )


def model_format(path: str | Path) -> str:
    """``"onnx"``, ``"torchscript"`` or ``"checkpoint"``, from the file's contents.

    Raises:
        CheckpointError: the file is missing or none of the three.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist; check the path")
    with path.open("rb") as file:
        head = file.read(4)
    if head[:2] != b"PK":  # torch.save and torch.jit.save both write zip archives
        if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # protobuf field 1 (ir_version)
            return "onnx"
        raise CheckpointError(
            f"{path} is not an ssdcli checkpoint, ONNX or TorchScript file; "
            "pass a runs/<name>/best.pt or a file written by `ssd export`"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({error}); re-create it") from error
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return "torchscript"
    return "checkpoint"


def find_default_model(runs_dir: str | Path = "runs") -> Path:
    """The most recently written ``runs/*/best.pt``.

    Raises:
        UsageError: none exists (the message says how to train one or pass ``--model``).
    """
    candidates = [p for p in Path(runs_dir).glob("*/best.pt") if p.is_file()]
    if not candidates:
        raise UsageError(
            f"no trained model found (no {Path(runs_dir) / '*' / 'best.pt'}); train one with "
            "`ssd train` or pass --model FILE (a checkpoint, .onnx or TorchScript file)"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def open_predictor(
    path: str | Path,
    device: str = "cpu",
    score_threshold: float | None = None,
    nms_iou: float | None = None,
    max_detections: int | None = None,
    batch_size: int = 8,
    classes: Sequence[int] | None = None,
) -> BasePredictor:
    """A predictor for a checkpoint, ONNX or TorchScript file (format read from the file).

    Args:
        path: the model file.
        device: torch device for checkpoints and TorchScript; ONNX Runtime uses CUDA when the
            device is a GPU and the CUDA provider is installed, else the CPU.
        score_threshold, nms_iou, max_detections: None = the model's own settings.
        batch_size: images per forward pass (models exported with a fixed batch use theirs).
        classes: keep only these labels.

    Raises:
        CheckpointError: the file cannot be read.
    """
    options = {
        "score_threshold": score_threshold,
        "nms_iou": nms_iou,
        "max_detections": max_detections,
        "batch_size": batch_size,
        "classes": classes,
    }
    fmt = model_format(path)
    if fmt == "onnx":
        from ssdcli.engine.runtimes import OnnxPredictor

        return OnnxPredictor(path, device=device, **options)
    if fmt == "torchscript":
        from ssdcli.engine.runtimes import TorchScriptPredictor

        return TorchScriptPredictor(path, device=device, **options)
    from ssdcli.engine.checkpoint import load_detector

    loaded = load_detector(path, device=device)
    return Predictor(
        loaded.detector,
        loaded.recipe,
        device,
        class_names=loaded.class_names,
        category_ids=loaded.category_ids,
        **options,
    )
