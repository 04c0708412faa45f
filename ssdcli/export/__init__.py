"""``ssd export``: a checkpoint -> an ONNX, OpenVINO, LiteRT or TorchScript file, verified
against PyTorch.

Entry point: :func:`ssdcli.export.run.run` (an :class:`~ssdcli.export.run.ExportRequest` and a
reporter -> the :class:`~ssdcli.export.exporter.ExportResult`), which calls
:func:`ssdcli.export.exporter.export_model`. The network graph
(:mod:`~ssdcli.export.onnx_graph`), post-processing as ONNX operators
(:mod:`~ssdcli.export.onnx_postprocess`), the finished ONNX file (:mod:`~ssdcli.export.onnx_file`),
TorchScript (:mod:`~ssdcli.export.torchscript`), int8 (:mod:`~ssdcli.export.quantize`) and the
verification (:mod:`~ssdcli.export.verify`) each have their module.
"""

from ssdcli.export.run import ExportRequest, run

__all__ = ["ExportRequest", "run"]
