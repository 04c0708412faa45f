"""Anchor: Ultralytics YOLO11n from scratch in a wall-clock budget, scored with ssdcli's metrics.

Ultralytics is never a dependency of ssdcli: it lives in its own virtual environment, and this
script runs in two. With ssdcli's environment it

1. reads the data set with ssdcli's data layer, exactly as `ssd train --data PATH` reads it, and
   writes a YOLO copy under ``<out>/yolo``: ``images/<split>/`` symbolic links to the original
   pictures, ``labels/<split>/*.txt`` (class cx cy w h, normalised) and ``data.yaml`` with the
   ``train``, ``val`` and ``test`` splits;
2. runs itself with ``--yolo-python`` (a Python with ultralytics, not ssdcli) to train
   ``YOLO("yolo11n.yaml")`` with ``pretrained=False``, ``device="cpu"``, ``time=<budget in
   hours>`` and Ultralytics' defaults otherwise (640 px, batch 16, its optimiser choice, mosaic,
   validation on the val split after every epoch, best.pt chosen on it), then to predict the
   test split with best.pt at ``conf=0.001`` (Ultralytics' validation settings: NMS IoU 0.7, 300
   per image) into ``<out>/detections.json``;
3. scores those detections with the functions `ssd eval` uses (VOC area and VOC07 mAP@0.5, COCO
   AP), prints one table row and writes ``<out>/result.json``.

    PYTHONPATH=. python benchmarks/anchor_yolo.py --data ../shared/data/paddy --time 30m \\
        --out /work/anchors-out/yolo-paddy --yolo-python /work/venv-yolo/bin/python

Setting up the environment (Ultralytics keeps the torch it finds):

    python3 -m venv /work/venv-yolo
    /work/venv-yolo/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/venv-yolo/bin/pip install ultralytics

Nothing is downloaded: the network is built from its YAML (no weights); ``plots=False``; the
Arial font Ultralytics' data set check looks for (and would fetch from GitHub) is matplotlib's
DejaVu Sans linked under that name in ``<out>/ultralytics-config``, which holds its settings
instead of the home folder; :data:`OFFLINE_ENV` turns off its online checks, analytics and
automatic pip installs and points HTTP(S) at a closed local port, so a request that slips through
fails instead of downloading. Ultralytics'
``time`` budget covers its epochs and their validations, from its first epoch on; the final
prediction and scoring come after it and are not counted. Torch threads are Ultralytics' own
choice unless ``--threads`` is given (it uses one thread fewer than the cores for its
operations); the result file records what ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchor_common import (  # noqa: E402
    TABLE_HEADER,
    load_splits,
    machine,
    now,
    parse_budget,
    score,
    table_row,
    write_json,
)

NAME = "YOLO11n from scratch (Ultralytics)"
OFFLINE_ENV = {
    "YOLO_OFFLINE": "true",  # Ultralytics' ONLINE flag off: no update checks, no analytics
    "YOLO_AUTOINSTALL": "false",  # never pip-install a missing requirement at run time
    # Any request the settings above miss fails at once here instead of reaching the network.
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
}
YOLO_SPLITS = ("train", "val", "test")


# -- step 1 (ssdcli's environment): the YOLO copy ----------------------------------------------


def write_yolo_copy(data: str, folder: Path) -> dict:
    """Writes ``folder/data.yaml``, ``images/<split>`` links and ``labels/<split>`` files.

    Image ``i`` of a split becomes ``<i:06d><suffix>`` (names in the data set may collide or hold
    characters YOLO tools dislike); ``index.json`` keeps the record ids in that order, so the
    scoring step can check it reads the same test split. Difficult and crowd boxes are left out
    of the labels, as ssdcli's training leaves them out.

    Returns:
        ``{"class_names": [...], "splits": {"train": "train", "val": <name>, "test": <name>},
        "counts": {...}}``.
    """
    manifest, train_split, val_split, test_split = load_splits(data)
    names = {"train": train_split, "val": val_split, "test": test_split}
    index: dict[str, list[str]] = {}
    for role, split in names.items():
        images = folder / "images" / role
        labels = folder / "labels" / role
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        ids = []
        for i, record_index in enumerate(manifest.split_indices(split)):
            record = manifest.records[record_index]
            source = Path(record.image_path)
            link = images / f"{i:06d}{source.suffix.lower()}"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source)
            height, width = record.size_hw
            keep = ~(record.difficult | record.iscrowd)
            rows = []
            boxes, labels_g = record.boxes_xyxy[keep], record.labels[keep]
            for (x0, y0, x1, y1), label in zip(boxes, labels_g, strict=True):
                cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
                w, h = (x1 - x0) / width, (y1 - y0) / height
                rows.append(f"{int(label)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
            (labels / f"{i:06d}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
            ids.append(record.image_id)
        index[role] = ids
    yaml_lines = [f"path: {folder.resolve()}"]
    yaml_lines += [f"{role}: images/{role}" for role in YOLO_SPLITS]
    yaml_lines.append("names:")
    yaml_lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(manifest.class_names)]
    (folder / "data.yaml").write_text("\n".join(yaml_lines) + "\n")
    info = {
        "class_names": list(manifest.class_names),
        "splits": names,
        "counts": {role: len(ids) for role, ids in index.items()},
        "index": index,
    }
    write_json(folder / "index.json", info)
    return info


# -- step 2 (the Ultralytics environment): train and predict -----------------------------------


def ultralytics_side(args: argparse.Namespace) -> int:
    """Trains YOLO11n from its YAML within ``args.seconds`` and writes test-split detections."""
    import matplotlib
    import torch
    import ultralytics
    from ultralytics import YOLO
    from ultralytics.utils import USER_CONFIG_DIR

    # Ultralytics' data set check looks for Arial.ttf (for plots) and asks GitHub for it when it
    # is missing, whatever `plots` says; matplotlib's own DejaVu Sans under that name ends the
    # search locally (no plot is drawn with plots=False).
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (USER_CONFIG_DIR / font).exists():
            (USER_CONFIG_DIR / font).symlink_to(dejavu)
    folder = Path(args.yolo_dir)
    counted = {"epochs": 0, "start": None, "end": None, "train_images": 0, "batch": 0}
    trained: set[int] = set()
    fitted: set[int] = set()
    batches: dict[int, int] = {}  # epoch -> batches started (each one trains: the budget is
    # checked only after an optimiser step)

    def on_train_start(trainer) -> None:
        if args.threads:  # after Ultralytics' device selection, which sets its own count
            torch.set_num_threads(args.threads)
        counted["start"] = time.perf_counter()

    def on_train_batch_start(trainer) -> None:
        batches[trainer.epoch] = batches.get(trainer.epoch, 0) + 1
        counted["batch"] = trainer.batch_size
        counted["train_images"] = len(trainer.train_loader.dataset)

    def on_train_epoch_end(trainer) -> None:
        trained.add(trainer.epoch)

    def on_fit_epoch_end(trainer) -> None:  # after the epoch's validation
        # final_eval (best.pt, after the budget) calls it again with the epoch number + 1
        if trainer.epoch not in trained or trainer.epoch in fitted:
            return
        fitted.add(trainer.epoch)
        counted["epochs"] += 1
        counted["end"] = time.perf_counter()

    model = YOLO("yolo11n.yaml")
    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_batch_start", on_train_batch_start)
    model.add_callback("on_train_epoch_end", on_train_epoch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    load_start = os.getloadavg()[0]
    call_start = time.perf_counter()
    model.train(
        data=str(folder / "data.yaml"),
        device="cpu",
        time=args.seconds / 3600.0,
        pretrained=False,
        plots=False,  # plotting fetches Arial.ttf from the network
        seed=args.seed,
        project=str(Path(args.out).resolve()),
        name="train",
        exist_ok=True,
    )
    call_seconds = time.perf_counter() - call_start
    load_end = os.getloadavg()[0]
    save_dir = Path(model.trainer.save_dir)
    weights = save_dir / "weights" / "best.pt"
    if not weights.is_file():
        weights = save_dir / "weights" / "last.pt"
    trained = YOLO(str(weights))
    test_images = sorted((folder / "images" / "test").iterdir())
    detections = {}
    for result in trained.predict(
        [str(p) for p in test_images],
        conf=0.001,
        iou=0.7,
        max_det=300,
        device="cpu",
        stream=True,
        verbose=False,
    ):
        boxes = result.boxes
        detections[Path(result.path).stem] = {
            "boxes_xyxy": boxes.xyxy.tolist(),
            "scores": boxes.conf.tolist(),
            "labels": [int(c) for c in boxes.cls.tolist()],
        }
    seconds = (counted["end"] or time.perf_counter()) - (counted["start"] or call_start)
    run = {
        "budget_seconds": args.seconds,
        "train_seconds": round(seconds, 1),
        "train_call_seconds": round(call_seconds, 1),
        "epochs_done": counted["epochs"],
        # the last batch of an epoch may be short: at most the data set per epoch
        "images_seen": sum(
            min(n * counted["batch"], counted["train_images"]) for n in batches.values()
        ),
        "batches_started": sum(batches.values()),
        "weights": weights.name,
        "load_start": round(load_start, 2),
        "load_end": round(load_end, 2),
        "threads": torch.get_num_threads(),
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__},
    }
    out = Path(args.out)
    (out / "detections.json").write_text(json.dumps({"run": run, "detections": detections}))
    return 0


# -- step 3 (ssdcli's environment): score -----------------------------------------------------


def score_detections(data: str, out: Path, info: dict) -> tuple:
    """Our metrics on the Ultralytics detections, in the test split's record order."""
    import numpy as np

    from ssdcli.metrics.voc import ImageDetections

    manifest, *_ = load_splits(data)
    test_split = info["splits"]["test"]
    ids = [manifest.records[i].image_id for i in manifest.split_indices(test_split)]
    if ids != info["index"]["test"]:
        raise SystemExit(f"{out}/yolo/index.json is not this data set's {test_split} split")
    raw = json.loads((out / "detections.json").read_text())
    detections = []
    for i in range(len(ids)):
        det = raw["detections"].get(f"{i:06d}")
        if det is None or not det["scores"]:
            detections.append(ImageDetections.empty())
            continue
        detections.append(
            ImageDetections(
                np.asarray(det["boxes_xyxy"], np.float32).reshape(-1, 4),
                np.asarray(det["scores"], np.float32),
                np.asarray(det["labels"], np.int64),
            )
        )
    return manifest, raw["run"], score(manifest, test_split, detections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = sys.argv[1:] if argv is None else argv
    if sub and sub[0] == "_ultralytics":  # step 2, run by step 1 in the Ultralytics environment
        inner = argparse.ArgumentParser()
        inner.add_argument("--yolo-dir", required=True)
        inner.add_argument("--out", required=True)
        inner.add_argument("--seconds", type=float, required=True)
        inner.add_argument("--seed", type=int, default=0)
        inner.add_argument("--threads", type=int, default=0)
        return ultralytics_side(inner.parse_args(sub[1:]))
    parser.add_argument("--data", required=True, help="data set as `ssd train --data` takes it")
    parser.add_argument("--time", default="30m", help="training budget, e.g. 30m (default)")
    parser.add_argument("--out", required=True, type=Path, help="folder for all outputs")
    parser.add_argument(
        "--yolo-python", default="/work/venv-yolo/bin/python", help="a Python with ultralytics"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: Ultralytics')")
    args = parser.parse_args(sub)
    budget = parse_budget(args.time)
    out = args.out.resolve()
    info = write_yolo_copy(args.data, out / "yolo")
    print(
        f"{NAME}: YOLO copy in {out / 'yolo'} ({info['counts']}), budget {budget:.0f}s; "
        f"{machine()}",
        flush=True,
    )
    config = out / "ultralytics-config"
    config.mkdir(parents=True, exist_ok=True)
    env = os.environ | OFFLINE_ENV | {"YOLO_CONFIG_DIR": str(config)}
    env.pop("PYTHONPATH", None)  # the Ultralytics side must not see ssdcli
    command = [args.yolo_python, str(Path(__file__).resolve()), "_ultralytics"]
    command += ["--yolo-dir", str(out / "yolo"), "--out", str(out), "--seconds", str(budget)]
    command += ["--seed", str(args.seed), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, cwd=out)
    if done.returncode:
        raise SystemExit(f"the Ultralytics step failed (exit {done.returncode}): {command}")
    manifest, run, result = score_detections(args.data, out, info)
    run["images_per_second"] = run["images_seen"] / run["train_seconds"]
    run["epochs"] = run["images_seen"] / info["counts"]["train"]
    payload = {
        "network": NAME,
        "data": str(Path(args.data).resolve()),
        "finished": now(),
        "machine": machine(),
        "settings": "YOLO('yolo11n.yaml').train(device='cpu', time=budget/3600, "
        "pretrained=False, plots=False), Ultralytics' defaults otherwise; predict best.pt at "
        "conf 0.001, iou 0.7, max_det 300",
        "run": run,
        "test": result.to_dict(),
    }
    path = write_json(out / "result.json", payload)
    print(TABLE_HEADER)
    print(table_row(NAME, args.data, result, run))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
