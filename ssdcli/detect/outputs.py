"""The writers of one ``ssd detect`` run: annotated images and videos, JSON lines, COCO results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssdcli.detect.sources import Frame, SourceItem
from ssdcli.errors import SsdError

if TYPE_CHECKING:
    from ssdcli.postprocess import Detections

JSONL_NAME = "detections.jsonl"
_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class FrameResult:
    """Detections of one image or video frame (boxes in pixels of the original image)."""

    frame: Frame
    detections: Detections


class RunOutputs:
    """Writers of one run: annotated images and videos, JSON lines, COCO results."""

    def __init__(self, out_dir: Path | None, class_names: list[str], save_images: bool) -> None:
        self.out_dir = out_dir
        self.class_names = class_names
        self.save_images = save_images and out_dir is not None
        self.used: set[Path] = set()
        self.written: list[Path] = []
        self.coco: list[tuple[str, str, Any]] = []  # (image id text, file name, detections)
        self.jsonl = None
        self.video_writer: Any = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = (out_dir / JSONL_NAME).open("w", encoding="utf-8")
            self.written.append(out_dir / JSONL_NAME)

    def add(self, result: FrameResult) -> None:
        frame, det = result.frame, result.detections
        boxes = det.boxes_D4.numpy().astype(np.float64)
        scores, labels = det.scores_D.numpy(), det.labels_D.numpy()
        if self.jsonl is not None:
            entry = {
                "image": str(frame.item.path),
                "frame": frame.index,
                "size_hw": list(frame.size_hw),
                "detections": [
                    {
                        "box_xyxy": [round(float(v), 2) for v in box],
                        "score": round(float(score), 5),
                        "label": int(label),
                        "class_name": self.class_names[int(label)],
                    }
                    for box, score, label in zip(boxes, scores, labels, strict=True)
                ],
            }
            self.jsonl.write(json.dumps(entry) + "\n")
        stem = Path(frame.item.rel_name).stem
        image_id = stem if frame.index is None else f"{stem}_{frame.index}"
        self.coco.append((image_id, frame.name, det))
        if self.save_images:
            self._annotate(frame, boxes, scores, labels)

    def _annotate(self, frame: Frame, boxes: np.ndarray, scores: Any, labels: Any) -> None:
        from ssdcli.viz.draw import draw_detections, save_image_rgb

        height, width = frame.image_rgb.shape[:2]
        scale = np.array([width / frame.size_hw[1], height / frame.size_hw[0]] * 2)
        drawn = draw_detections(frame.image_rgb, boxes * scale, labels, scores, self.class_names)
        if frame.item.kind == "video":
            self._video_frame(frame, drawn)
            return
        rel = Path(frame.item.rel_name)
        if rel.suffix.lower() not in _WRITABLE:
            rel = rel.with_suffix(".png")
        save_image_rgb(self._unique(self.out_dir / rel), drawn)

    def _unique(self, path: Path) -> Path:
        candidate, n = path, 1
        while candidate in self.used or candidate.exists():
            n += 1
            candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        self.used.add(candidate)
        self.written.append(candidate)
        return candidate

    def open_video(self, item: SourceItem, fps: float) -> None:
        self.close_video()
        if self.save_images:
            self._video_path = self._unique(self.out_dir / Path(item.rel_name).with_suffix(".mp4"))
            self._video_fps = fps

    def _video_frame(self, frame: Frame, drawn: np.ndarray) -> None:
        import cv2

        if self.video_writer is None:
            height, width = drawn.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._video_path.parent.mkdir(parents=True, exist_ok=True)
            self.video_writer = cv2.VideoWriter(
                str(self._video_path), fourcc, self._video_fps, (width, height)
            )
            if not self.video_writer.isOpened():
                raise SsdError(f"cannot write video {self._video_path}; check the folder")
        self.video_writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))

    def close_video(self) -> None:
        if self.video_writer is not None:
            self.video_writer.release()
            self.video_writer = None

    def close(self) -> None:
        self.close_video()
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None

    def write_coco(self, path: Path, category_ids: Sequence[int] | None) -> Path:
        """COCO results (``xywh_topleft`` boxes, category ids, image ids from file names)."""
        from ssdcli.metrics.coco import coco_category_ids, coco_image_ids, to_coco_results
        from ssdcli.metrics.voc import ImageDetections

        ids = coco_image_ids([image_id for image_id, _, _ in self.coco])
        dets = [
            ImageDetections(d.boxes_D4.numpy(), d.scores_D.numpy(), d.labels_D.numpy())
            for _, _, d in self.coco
        ]
        cats = coco_category_ids(len(self.class_names), category_ids)
        entries = to_coco_results(dets, ids, cats)
        names = {coco_id: name for coco_id, (_, name, _) in zip(ids, self.coco, strict=True)}
        for entry in entries:
            entry["bbox"] = [round(v, 2) for v in entry["bbox"]]
            entry["score"] = round(entry["score"], 5)
            entry["file_name"] = names[entry["image_id"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries) + "\n", encoding="utf-8")
        self.written.append(path)
        return path
