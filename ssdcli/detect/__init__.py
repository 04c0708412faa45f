"""``ssd detect``: run a model on images, folders, globs, lists and videos.

Entry point: :func:`ssdcli.detect.run.run_detect` (a predictor and the inputs -> annotated
pictures/videos, ``detections.jsonl`` and optionally COCO results JSON).
"""
