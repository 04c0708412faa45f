"""End-to-end detection speed on the CPU: ssdcli (eager, ONNX Runtime, int8) vs torchvision.

One SSD300-VGG16 (21 classes), built by torchvision's ``ssd300_vgg16`` with random weights and
imported into ssdcli with ``ssdcli.model.importers.import_torchvision``, so both run identical
weights, priors and normalisation. The class head's weights are halved and its background bias
raised by 7 so that, as with a trained model, most priors are background and a realistic number
of (prior, class) candidates, about 2000 per image, passes the 0.01 score threshold (printed).

Timed paths, from decoded uint8 RGB images of 375 x 500 to detections in pixels of those images:

* ``torchvision``: uint8 -> float tensors, ``model(images)`` in eval mode (resize, normalise,
  network, ``postprocess_detections``, box rescaling);
* ``ours eager``: ``Predictor.predict`` (batched preprocess, network, batched decode + NMS) with
  its default ``precision="auto"``: bfloat16 autocast where the CPU runs it natively (AVX-512
  BF16 or AMX), else float32; where that default is bfloat16 a second row runs in float32;
* ``ours onnxruntime``: the ``ssd export`` ONNX file (NMS in the graph) via ``OnnxPredictor``;
* ``ours onnxruntime int8``: the same graph with the network statically quantized (calibrated on
  generated pictures: a speed measurement only; accuracy needs a trained model, see
  ``ssd export --int8``).

Post-processing alone: 8732 priors x 21 classes, background-dominated logits (about 1200
candidates per image above 0.01) with 1% of priors carrying a confident class: ours
(``PostProcessor``) vs torchvision's ``postprocess_detections``, at the default thread count
and at one thread (``--post-threads``); "same detections" checks that both return the same
detections (scores and labels exactly, boxes to 1e-3 pixel). ``--post-only`` runs only this.

Measured (``--repeats 3 --no-onnx --no-int8``) on a quiet 2-core AMD EPYC with AVX-512 BF16:
images/s at batch 1 / 8 were torchvision 2.83 / 2.24, ours eager in its default bfloat16 6.46 /
6.01 (2.28x / 2.68x) and in float32 3.23 / 3.09 (1.14x / 1.38x); with ``--threads 1``
torchvision 1.50 / 1.32, ours 3.36 / 3.30 (2.24x / 2.51x) and 1.67 / 1.65 in float32 (1.12x /
1.25x). Earlier, on the shared CPU at a load average of about 6: ONNX Runtime 2.78x / 3.01x and
ONNX Runtime int8 6.86x / 8.36x of torchvision.

Post-processing alone (``--post-only``, three runs at a load average of 3.2 to 3.5, same
detections in all): with one thread, ours 1.1-1.2 / 5.9-6.7 ms per batch of 1 / 8 against
torchvision's 4.4-4.7 / 35-41 ms, 3.8-4.2x / 6.0-6.1x in wall and CPU time alike. With the
default two threads it depends on the load: 2.1x / 10.8x wall (2.0x / 10.7x CPU) in one run,
3.5-3.7x / 5.4-5.7x wall (6.9-7.0x / 6.6-8.2x CPU) in the two others. There, any thread team
of a small operation (torch's softmax always starts one; torchvision's path has several) can
wait a scheduler time slice, about 10 ms, for a busy core.

Usage::

    .venv/bin/python benchmarks/bench_detect.py [--repeats 5] [--warmup 1] [--batches 1 8]
        [--threads N] [--no-int8] [--no-onnx] [--post-only] [--post-threads 0 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision
from rich.console import Console
from rich.table import Table

from ssdcli.checkpoint.file import LoadedDetector
from ssdcli.config import Recipe, override_recipe
from ssdcli.infer.eager import Predictor
from ssdcli.model import build_detector
from ssdcli.model.importers import import_torchvision

NUM_CLASSES = 20
IMAGE_HW = (375, 500)
LOGIT_SCALE = 0.5
BACKGROUND_BIAS = 7.0


def build_models(seed: int) -> tuple[torch.nn.Module, LoadedDetector]:
    """torchvision's SSD300-VGG16 and the same weights as an ssdcli detector."""
    torch.manual_seed(seed)
    tv = torchvision.models.detection.ssd300_vgg16(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES + 1
    ).eval()
    with torch.no_grad():  # make random logits look like a trained model's (see the docstring)
        for conv in tv.head.classification_head.module_list:
            conv.weight.mul_(LOGIT_SCALE)
            conv.bias.mul_(LOGIT_SCALE)
            conv.bias.view(-1, NUM_CLASSES + 1)[:, 0] += BACKGROUND_BIAS
    imported = import_torchvision(tv.state_dict())
    overrides = {**imported.recipe_overrides}
    overrides.update(
        {
            "postprocess.score_threshold": tv.score_thresh,
            "postprocess.nms_iou": tv.nms_thresh,
            "postprocess.max_detections": tv.detections_per_img,
            "postprocess.pre_nms_top_k": tv.topk_candidates,
        }
    )
    recipe = override_recipe(Recipe(), overrides)
    detector = build_detector(recipe, NUM_CLASSES)
    detector.model.load_state_dict(imported.state_dict)
    detector.model.eval()
    names = [f"class{i}" for i in range(NUM_CLASSES)]
    return tv, LoadedDetector(detector, recipe, names, None)


def images(count: int, seed: int) -> list[np.ndarray]:
    """Decoded RGB uint8 pictures with shapes on a gradient (``ssdcli.data.pattern_images``)."""
    import cv2

    from ssdcli.data import pattern_images

    return [
        cv2.resize(im, IMAGE_HW[::-1], interpolation=cv2.INTER_AREA)
        for im in pattern_images(count, seed)
    ]


def timed(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """Median wall and process-CPU seconds of each function over ``repeats`` rounds.

    The functions run in turn within each round, so that a change of load on a shared machine
    affects all of them alike. CPU time (all threads of this process) is less disturbed by other
    jobs than wall time, but counts ONNX Runtime's spinning worker threads too.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


def torchvision_detect(tv: torch.nn.Module, batch: list[np.ndarray]) -> list[dict]:
    with torch.inference_mode():
        tensors = [torch.from_numpy(im).permute(2, 0, 1).float().div_(255) for im in batch]
        return tv(tensors)


def export_onnx(loaded: LoadedDetector, folder: Path, int8: bool, calibration: list) -> Path:
    """The ``ssd export`` ONNX graph (NMS inside, dynamic batch), float32 or int8."""
    import cv2

    from ssdcli.export.exporter import model_info
    from ssdcli.export.onnx_file import finish_onnx, save_onnx
    from ssdcli.export.onnx_graph import network_to_onnx
    from ssdcli.export.quantize import quantize_network

    info = model_info(loaded, "nms", True, format="onnx", opset=17, int8=int8, half=False)
    network = network_to_onnx(loaded.detector.model, info.size_hw, 17, True)
    if int8:
        paths = []
        for i, im in enumerate(calibration):
            paths.append(str(folder / f"calib{i}.png"))
            cv2.imwrite(paths[-1], cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        network = quantize_network(network, info, paths, folder)
    path = folder / ("int8.onnx" if int8 else "float.onnx")
    save_onnx(finish_onnx(network, loaded, info), path)
    return path


def candidates(loaded: LoadedDetector, batch: list[np.ndarray]) -> float:
    """Mean (prior, class) pairs per image scoring above the threshold (before NMS)."""
    predictor = Predictor(loaded.detector, loaded.recipe)
    logits, _ = predictor.raw_outputs(predictor.preprocess(batch))
    return float((logits.softmax(-1)[..., 1:] > 0.01).sum()) / len(batch)


def bench_postprocess(tv, loaded: LoadedDetector, batch: int, repeats: int, warmup: int) -> tuple:
    """Seconds of ours vs torchvision's post-processing on the same synthetic head outputs, and
    whether both give the same detections."""
    from ssdcli.boxes import BoxCoder, cxcywh_to_xyxy
    from ssdcli.postprocess import PostProcessor, PostprocessSettings

    gen = torch.Generator().manual_seed(0)
    priors = loaded.detector.priors_P4
    num_p, num_k = priors.shape[0], NUM_CLASSES + 1
    logits = torch.randn(batch, num_p, num_k, generator=gen)
    logits[..., 0] += 8.0  # background wins almost everywhere ...
    hot = torch.rand(batch, num_p, generator=gen) < 0.01  # ... but 1% of priors hold an object
    cls = torch.randint(1, num_k, (batch, num_p), generator=gen)
    boost = hot * (10.0 + torch.randn(batch, num_p, generator=gen))
    logits.scatter_add_(2, cls.unsqueeze(-1), boost.unsqueeze(-1))
    deltas = torch.randn(batch, num_p, 4, generator=gen) * 0.5
    pp = loaded.recipe.postprocess
    ours = PostProcessor(priors, BoxCoder(), PostprocessSettings.from_mapping(pp))
    sizes = [(300, 300)] * batch
    anchors = [cxcywh_to_xyxy(priors) * 300] * batch
    head = {"bbox_regression": deltas, "cls_logits": logits}
    with torch.inference_mode():
        fns = {
            "ours": lambda: ours(logits, deltas, sizes),
            "tv": lambda: tv.postprocess_detections(head, anchors, sizes),
        }
        seconds = timed(fns, repeats, warmup)
        mine, theirs = ours(logits, deltas, sizes), tv.postprocess_detections(head, anchors, sizes)
        found = sum(len(d) for d in mine) / batch
        above = float((logits.softmax(-1)[..., 1:] > pp.score_threshold).sum()) / batch
    same = all(  # scores and labels exactly, boxes up to rounding (computed in other frames)
        torch.equal(d.scores_D, t["scores"])
        and torch.equal(d.labels_D + 1, t["labels"])
        and torch.allclose(d.boxes_D4, t["boxes"], atol=1e-3)
        for d, t in zip(mine, theirs, strict=True)
    )
    return seconds["ours"], seconds["tv"], found, above, same


def postprocess_table(tv, loaded: LoadedDetector, args: argparse.Namespace) -> Table:
    """Post-processing alone, for each thread count of ``--post-threads`` and each batch."""
    post = Table(title="post-processing alone, 8732 priors x 21 classes, ms per batch (wall / CPU)")
    columns = ("threads", "batch", "candidates/image", "detections/image", "ours", "torchvision")
    for column in (*columns, "speed-up", "same detections"):
        post.add_column(column, justify="right")
    default_threads = torch.get_num_threads()
    for threads in args.post_threads:
        torch.set_num_threads(threads or default_threads)
        for batch in args.batches:
            ours, theirs, found, above, same = bench_postprocess(
                tv, loaded, batch, args.repeats * 4, args.warmup
            )
            post.add_row(
                str(torch.get_num_threads()),
                str(batch),
                f"{above:.0f}",
                f"{found:.0f}",
                f"{1e3 * ours[0]:.1f} / {1e3 * ours[1]:.1f}",
                f"{1e3 * theirs[0]:.1f} / {1e3 * theirs[1]:.1f}",
                f"{theirs[0] / ours[0]:.2f}x / {theirs[1] / ours[1]:.2f}x",
                "yes" if same else "NO",
            )
    torch.set_num_threads(default_threads)
    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=0, help="torch/ORT threads (0: default)")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--post-only", action="store_true", help="only post-processing alone")
    parser.add_argument(
        "--post-threads",
        type=int,
        nargs="+",
        default=[0, 1],
        help="torch threads for post-processing alone (0: as for the rest)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=120)
    tv, loaded = build_models(args.seed)
    if args.post_only:
        console.print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
        console.print(postprocess_table(tv, loaded, args))
        return
    pictures = images(max(args.batches), args.seed)
    console.print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"{torch.get_num_threads()} threads; {len(loaded.detector.priors_P4)} priors; "
        f"{candidates(loaded, pictures[:2]):.0f} (prior, class) candidates above 0.01 per image"
    )
    predictors: dict[str, Callable[[list[np.ndarray]], object]] = {}
    eager = Predictor(loaded.detector, loaded.recipe, batch_size=max(args.batches))
    precision_name = {"float32": "float32", "bf16": "bfloat16"}[eager.precision]
    predictors[f"ours eager (default: {precision_name})"] = eager.predict
    if eager.precision != "float32":
        fp32 = Predictor(
            loaded.detector, loaded.recipe, batch_size=max(args.batches), precision="float32"
        )
        predictors["ours eager float32"] = fp32.predict
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        if not args.no_onnx:
            from ssdcli.infer.runtimes import OnnxPredictor

            for int8 in (False, True):
                if int8 and args.no_int8:
                    continue
                path = export_onnx(loaded, Path(tmp), int8, images(16, args.seed + 1))
                runner = OnnxPredictor(path, batch_size=max(args.batches), threads=args.threads)
                predictors["ours onnxruntime" + (" int8" if int8 else "")] = runner.predict
        table = Table(title="end to end, images/s (ratio to torchvision)")
        table.add_column("path")
        for batch in args.batches:
            table.add_column(f"batch {batch}", justify="right")
        rates: dict[str, list[float]] = {}
        for batch in args.batches:
            chunk = pictures[:batch]
            fns = {"torchvision": lambda c=chunk: torchvision_detect(tv, c)}
            fns.update({name: (lambda p=p, c=chunk: p(c)) for name, p in predictors.items()})
            for name, (wall, _) in timed(fns, args.repeats, args.warmup).items():
                rates.setdefault(name, []).append(batch / wall)
        for name, values in rates.items():
            cells = [
                f"{v:.2f} ({v / base:.2f}x)"
                for v, base in zip(values, rates["torchvision"], strict=True)
            ]
            table.add_row(name, *cells)
        console.print(table)
    console.print(postprocess_table(tv, loaded, args))


if __name__ == "__main__":
    main()
