"""``ssd detect``: run a model on images, folders, globs, lists and videos.

Entry point: :func:`ssdcli.detect.run.run` (a :class:`~ssdcli.detect.run.DetectRequest` and a
:class:`~ssdcli.detect.run.DetectReporter` -> a :class:`~ssdcli.detect.run.DetectOutcome`:
annotated pictures/videos, ``detections.jsonl`` and optionally COCO results JSON).
"""

from ssdcli.detect.run import DetectOutcome, DetectReporter, DetectRequest, DetectStart, run

__all__ = ["DetectOutcome", "DetectReporter", "DetectRequest", "DetectStart", "run"]
