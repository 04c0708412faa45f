"""``report.html``: content, embedded images that decode, the worst-image gallery, and a real
headless browser rendering it with every image loaded (skipped where no browser is installed).

The screenshot is written under pytest's tmp dir and copied to ``$SSD_TEST_ARTIFACTS`` when set.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from ssdcli.data.records import Record
from ssdcli.evaluate.evaluator import evaluate_detections
from ssdcli.evaluate.report import ReportRequest, write_report
from ssdcli.metrics.voc import ImageDetections

CLASSES = ["cat", "dog"]
IMG_SRC = re.compile(r'<img alt="([^"]*)"[^>]* src="data:image/(png|jpeg);base64,([^"]+)"')


def _dets(boxes, scores, labels) -> ImageDetections:
    return ImageDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report on four 96 x 128 images with hand-made detections, threshold 0.5.

    Errors per image: ``clean`` 0; ``one_fp`` 1 (a background box); ``messy`` 3 (a duplicate, a
    dog detected as a cat, a missed cat); ``missed`` 2 (two missed objects).
    """
    folder = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    gts = {
        "clean": ([[10, 10, 50, 60]], [0]),
        "one_fp": ([[60, 20, 100, 70]], [1]),
        "messy": ([[5, 5, 45, 45], [60, 10, 120, 80], [70, 50, 90, 90]], [0, 1, 0]),
        "missed": ([[10, 10, 40, 40], [50, 50, 90, 90]], [1, 0]),
    }
    found = {
        "clean": _dets([[10, 10, 50, 60]], [0.9], [0]),
        "one_fp": _dets([[60, 20, 100, 70], [0, 0, 20, 20]], [0.8, 0.95], [1, 0]),
        "messy": _dets(
            [[5, 5, 45, 45], [6, 5, 45, 44], [60, 10, 120, 80]], [0.9, 0.7, 0.6], [0, 0, 0]
        ),
        "missed": _dets([[10, 10, 40, 40]], [0.2], [1]),  # below the threshold
    }
    records = []
    for name, (boxes, labels) in gts.items():
        path = folder / f"{name}.png"
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        cv2.imwrite(str(path), image)
        records.append(Record.make(name, path, (96, 128), boxes, labels))
    result = evaluate_detections(records, list(found.values()), CLASSES, "all", split="val")
    run = folder / "run"
    run.mkdir()
    (run / "metrics.csv").write_text(
        "iteration,epoch,loss,box_loss,cls_loss,lr,voc07_map50\n"
        "1,0,3.0,1.0,2.0,0.001,\n2,0,2.5,0.9,1.6,0.001,\n2,0,,,,,0.42\n"
    )
    (run / "recipe.yaml").write_text("model:\n  backbone: tiny  # <b>not markup</b>\n")
    request = ReportRequest(
        result, records, (64, 64), "test report", run_dir=run, threshold=0.5, worst=3, crops=2
    )
    return write_report(request, run / "report.html").path


def test_report_sections_and_embedded_images_decode(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for heading in ("Metrics", "Per-class AP", "Precision / recall", "Errors at score threshold",
                    "most errors", "most confident false positives", "Label statistics",
                    "Training curves", "Recipe"):  # fmt: skip
        assert heading in text, heading
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert "&lt;b&gt;not markup&lt;/b&gt;" in text  # the recipe is escaped, not rendered
    images = IMG_SRC.findall(text)
    assert len(images) == text.count("<img")  # every image is an embedded data URI
    for alt, _, data in images:
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.size > 0, alt


def test_gallery_shows_the_worst_images_in_order(report: Path) -> None:
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", report.read_text(encoding="utf-8"))
    worst = [c for c in captions if "error" in c]
    assert worst == [
        "messy: 3 errors (2 FP, 1 missed)",
        "missed: 2 errors (0 FP, 2 missed)",
        "one_fp: 1 error (1 FP, 0 missed)",
    ]
    crops = [c for c in captions if "error" not in c]
    assert crops == ["cat 0.95, background (one_fp)", "cat 0.70, duplicate (messy)"]


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",  # a fresh profile per run: no state shared between tests
    ]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


# Appended to a copy of the report (the report itself has no script): after load, counts the
# images that failed to decode and writes the verdict into the DOM that --dump-dom prints.
CHECK = """<script>window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  var out = document.createElement("pre"); out.id = "img-check";
  out.textContent = "images=" + imgs.length + " broken=" + broken.length;
  document.body.appendChild(out);
});</script>"""


def test_report_renders_in_a_headless_browser(report: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium/chrome installed")
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"))
    dom = _chromium(browser, tmp_path / "profile-dom", "--virtual-time-budget=10000",
                    "--dump-dom", checked.as_uri())  # fmt: skip
    verdict = re.search(r"images=(\d+) broken=(\d+)", dom.stdout)
    assert verdict, dom.stderr[-2000:]
    assert int(verdict.group(1)) == report.read_text(encoding="utf-8").count("<img") > 10
    assert int(verdict.group(2)) == 0

    shot = tmp_path / "report_screenshot.png"
    run = _chromium(browser, tmp_path / "profile-shot", f"--screenshot={shot}",
                    "--window-size=1280,4000", report.as_uri())  # fmt: skip
    assert shot.is_file(), run.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (4000, 1280)
    assert float(image.std()) > 10  # not a blank page: text, charts and photos drew
    if artefacts := os.environ.get("SSD_TEST_ARTIFACTS"):
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artefacts) / "report_screenshot.png")
