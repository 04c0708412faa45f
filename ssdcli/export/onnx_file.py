"""The finished ONNX file: a network graph plus post-processing (or the priors output) and the
model description in its metadata, checked by ``onnx.checker`` and saved.

Used by the float export (:mod:`ssdcli.export.exporter`) and the int8 one
(:mod:`ssdcli.export.quantize`) alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdcli import __version__
from ssdcli.infer.model_info import METADATA_KEY, ModelInfo, metadata_json

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector


def finish_onnx(proto: Any, loaded: LoadedDetector, info: ModelInfo) -> Any:
    """Append post-processing (or the priors output) to a network graph and store the metadata."""
    import json

    import onnx

    from ssdcli.export.onnx_graph import add_raw_outputs, set_metadata
    from ssdcli.export.onnx_postprocess import add_postprocess

    priors = loaded.detector.priors_P4.detach().cpu().float().numpy()
    if info.form == "nms":
        add_postprocess(
            proto, priors, len(info.class_names) + 1, info.box_coder(), info.postprocess
        )
    else:
        add_raw_outputs(proto, priors)
    set_metadata(
        proto,
        {
            METADATA_KEY: metadata_json(info),
            "class_names": json.dumps(info.class_names),
            "input_size_hw": json.dumps(list(info.size_hw)),
            "mean": json.dumps(list(info.mean)),
            "std": json.dumps(list(info.std)),
            "channel_order": info.channel_order,
            "form": info.form,
            "priors": json.dumps(info.extra["priors"]),
            "postprocess": json.dumps(info.postprocess.to_dict()),
        },
    )
    proto.producer_name, proto.producer_version = "ssdcli", __version__
    proto.doc_string = f"SSD detector ({info.form} outputs); see metadata key '{METADATA_KEY}'"
    onnx.checker.check_model(proto)
    return proto


def save_onnx(proto: Any, path: Path) -> None:
    import onnx

    onnx.save(proto, str(path))
