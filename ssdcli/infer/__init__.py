"""Running a model on decoded images, whatever its format.

* :mod:`ssdcli.infer.base`: ``BasePredictor`` - preprocessing, batching, class filtering.
* :mod:`ssdcli.infer.eager`: ``Predictor`` - an ssdcli detector in eager PyTorch.
* :mod:`ssdcli.infer.runtimes`: ``OnnxPredictor`` (ONNX Runtime), ``TorchScriptPredictor``.
* :mod:`ssdcli.infer.openvino_runtime`: ``OpenVinoPredictor`` (OpenVINO IR on the CPU).
* :mod:`ssdcli.infer.litert_runtime`: ``LiteRtPredictor`` (``.tflite`` with the LiteRT
  interpreter).
* :mod:`ssdcli.infer.open`: ``open_predictor(path)`` (format read from the file),
  ``find_default_model``.
* :mod:`ssdcli.infer.model_info`: ``ModelInfo``, the description every predictor needs.
"""
