"""Predictor for LiteRT (TFLite) files written by ``ssd export --format tflite``.

The file holds the raw form (``images [1, 3, H, W] -> cls_logits, box_deltas, priors``) and is run
with the LiteRT interpreter (``ai-edge-litert``); decoding and NMS run here, with the caller's
settings, as for the other raw exports. A TFLite file has no place for free-form metadata that
its interpreter reads back, so the model description (the same JSON as inside ONNX files) is the
file :func:`metadata_path` beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.errors import CheckpointError
from ssdcli.infer.model_info import info_from_metadata
from ssdcli.infer.runtimes import ExportedPredictor, require

if TYPE_CHECKING:
    from ssdcli.postprocess import PostprocessOverrides

SIGNATURE = "serving_default"
OUTPUTS = ("output_0", "output_1", "output_2")  # cls_logits, box_deltas, priors


def metadata_path(path: str | Path) -> Path:
    """``best-raw.tflite`` -> ``best-raw.tflite.json``: the model description beside the file."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class LiteRtPredictor(ExportedPredictor):
    """A ``.tflite`` file written by ``ssd export --format tflite``, run with LiteRT on the CPU.

    Args:
        path: the ``.tflite`` file (its ``.tflite.json`` description beside it).
        overrides: post-processing asked for at run time (None values = the file's settings).
        batch_size, classes: as :class:`~ssdcli.infer.base.BasePredictor` (the file's batch is
            fixed at 1; batches run one image at a time).
        threads: interpreter threads (0 = LiteRT's default).

    Raises:
        ExportError: ai-edge-litert is not installed.
        CheckpointError: the file or its description cannot be read.
    """

    def __init__(
        self,
        path: str | Path,
        overrides: PostprocessOverrides | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
        threads: int = 0,
    ) -> None:
        module = require("ai_edge_litert.interpreter", "tflite")
        meta = metadata_path(path)
        if not meta.is_file():
            raise CheckpointError(
                f"{path} has no model description {meta.name} beside it; keep the two files "
                "together (ssd export --format tflite writes both)"
            )
        info = info_from_metadata(meta.read_text(encoding="utf-8"), "tflite", str(meta))
        try:
            self.interpreter = module.Interpreter(
                model_path=str(path), num_threads=int(threads) if threads else None
            )
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except Exception as error:  # the interpreter raises ValueError / RuntimeError
            raise CheckpointError(
                f"LiteRT cannot load {path}: {str(error).splitlines()[0]}"
            ) from error
        (name,) = self.runner.get_input_details()
        self.input_name = name
        info.fixed_batch = int(self.runner.get_input_details()[name]["shape"][0])
        super().__init__(info, overrides, batch_size, classes)

    def file_outputs(self, batch_BCHW: np.ndarray) -> list[np.ndarray]:
        outputs = self.runner(**{self.input_name: np.ascontiguousarray(batch_BCHW, np.float32)})
        return [np.array(outputs[name]) for name in OUTPUTS]
