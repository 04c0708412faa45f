"""Forward-only CPU inference speed: ssdcli's networks vs torchvision's, identical weights.

For SSD300-VGG16 and SSDLite320-MobileNetV3-Large, torchvision's model is built with random
weights (batch-norm statistics included) and imported into ssdcli with
``ssdcli.model.importers.import_torchvision``, so both networks compute the same function (the
largest output difference, relative to the largest output, is printed). Both have 21 classes
(VOC), so their heads do the same work. Timed: the network only, from a normalised
``(B, 3, H, W)`` float32 batch to raw head outputs (no resize, no post-processing):

* ``torchvision``: ``head(backbone(x))`` under ``torch.inference_mode`` (its network as shipped);
* ``torchvision channels_last``: the same with channels-last memory (for reference: what that
  one option gives torchvision too);
* ``ours eager``: ``model(x)`` under ``torch.no_grad``;
* ``ours inference_mode``: the same under ``torch.inference_mode``;
* ``ours channels_last``: plus channels-last memory;
* ``ours fused``: ``ssdcli.model.fused_copy.optimize_for_inference`` (channels-last, batch
  norms folded, each convolution + activation one oneDNN primitive with pre-packed weights).

* ``ours channels_last bf16``: channels-last under bfloat16 autocast.

``Predictor`` runs in float32 ``ours channels_last`` or ``ours fused`` depending on the batch
size (``ssdcli.infer.network_copy.choose_path``), and by default (``precision="auto"``) ``ours
channels_last bf16`` where the CPU runs bfloat16 natively; the row it runs by default is marked
"(predictor)", the float32 one "(predictor, float32)". The ceiling is measured in both
precisions (a float32 and a bfloat16 matmul), and each predictor path is given as a share of
the ceiling in its own precision. The largest output difference is printed for the float32
variants and, separately, for bfloat16 against float32.

Variants run interleaved, round after round, so that load from other processes spreads over all
of them; per variant the median and the best (minimum) time of the timed rounds are reported.
The achieved GFLOP/s of the SSD300 forward (FLOPs counted by ``torch.utils.flop_counter``) is
compared with a large float32 matmul timed in the same rounds (the practical ceiling).

Usage::

    .venv/bin/python benchmarks/bench_infer.py [--rounds 5] [--batches 1 8] [--threads N]
        [--models ssd300 ssdlite] [--matmul 2048]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large

from ssdcli.config import Recipe, override_recipe
from ssdcli.device import resolve_precision
from ssdcli.infer.network_copy import choose_path
from ssdcli.model import build_detector
from ssdcli.model.fused_copy import optimize_for_inference
from ssdcli.model.importers import import_torchvision

NUM_K = 21  # 20 classes + background in both networks (VOC), so both heads do the same work
MODELS = {
    "ssd300": ("SSD300-VGG16", ssd300_vgg16),
    "ssdlite": ("SSDLite320-MobileNetV3", ssdlite320_mobilenet_v3_large),
}
ROUNDS_FACTOR = {"ssd300": 1, "ssdlite": 4}  # SSDLite is ~70x cheaper: more rounds, less noise


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """He-normal weights, small biases, random batch-norm statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif tensor.dim() == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.copy_(
                    torch.randn(tensor.shape, generator=gen) * math.sqrt(2 / tensor[0].numel())
                )


def build_pair(key: str) -> tuple[torch.nn.Module, torch.nn.Module, tuple[int, int]]:
    """(torchvision model, our network, size_hw) with identical weights, eval mode."""
    with torch.device("meta"):
        tv = MODELS[key][1](weights=None, weights_backbone=None, num_classes=NUM_K)
    tv = tv.to_empty(device="cpu").eval()
    randomise(tv)
    imported = import_torchvision(tv.state_dict())
    recipe = override_recipe(Recipe(), imported.recipe_overrides)
    detector = build_detector(recipe, num_classes=len(imported.class_names))
    detector.model.load_state_dict(imported.state_dict, strict=True)
    return tv, detector.model.eval(), detector.size_hw


def variants(tv: torch.nn.Module, ours: torch.nn.Module, size_hw: tuple[int, int]) -> dict:
    """name -> (callable on an NCHW batch, grad mode context)."""
    import copy

    tv_cl = copy.deepcopy(tv).to(memory_format=torch.channels_last)
    ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    optimized = optimize_for_inference(ours)

    def tv_forward(model: torch.nn.Module, channels_last: bool) -> Callable:
        def run(x: torch.Tensor):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return model.head(list(model.backbone(x).values()))

        return run

    def ours_cl_forward(x: torch.Tensor):
        return ours_cl(x.contiguous(memory_format=torch.channels_last))

    def ours_bf16_forward(x: torch.Tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cls_logits, box_deltas = ours_cl(x.contiguous(memory_format=torch.channels_last))
        return cls_logits.float(), box_deltas.float()

    return {
        "torchvision": (tv_forward(tv, False), torch.inference_mode),
        "torchvision channels_last": (tv_forward(tv_cl, True), torch.inference_mode),
        "ours eager": (ours, torch.no_grad),
        "ours inference_mode": (ours, torch.inference_mode),
        "ours channels_last": (ours_cl_forward, torch.inference_mode),
        "ours fused": (optimized, torch.inference_mode),
        BF16: (ours_bf16_forward, torch.inference_mode),
    }


BF16 = "ours channels_last bf16"


def outputs_pair(result) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(result, dict):  # torchvision head
        return result["cls_logits"], result["bbox_regression"]
    return result


def time_variants(runs: dict, images: torch.Tensor, rounds: int, matmul: Callable) -> dict:
    """Interleaved timing: one warm-up call each, then ``rounds`` rounds of one call each."""
    times: dict[str, list[float]] = {name: [] for name in [*runs, "matmul", "matmul bf16"]}
    reference = None
    max_diff = {"float32": 0.0, "bf16": 0.0}
    for name, (run, mode) in runs.items():
        with mode():
            cls_logits, box_deltas = outputs_pair(run(images))
        if reference is None:
            reference = (cls_logits, box_deltas)
            continue
        kind = "bf16" if name == BF16 else "float32"
        max_diff[kind] = max(
            max_diff[kind],
            *(
                float((a - b).abs().max() / b.abs().max())
                for a, b in zip((cls_logits, box_deltas), reference, strict=True)
            ),
        )
    for _ in range(rounds):
        for name, (run, mode) in runs.items():
            with mode():
                start = time.perf_counter()
                run(images)
                times[name].append(time.perf_counter() - start)
        times["matmul"].append(matmul(torch.float32))
        times["matmul bf16"].append(matmul(torch.bfloat16))
    return {"times": times, "max_diff": max_diff}


def make_matmul(n: int) -> tuple[Callable[[torch.dtype], float], float]:
    """A timer of one n x n x n matmul in float32 or bfloat16, and its FLOP count."""
    operands = {
        dtype: (torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype))
        for dtype in (torch.float32, torch.bfloat16)
    }
    for a, b in operands.values():
        a @ b  # warm-up

    def run(dtype: torch.dtype) -> float:
        a, b = operands[dtype]
        start = time.perf_counter()
        a @ b
        return time.perf_counter() - start

    return run, 2.0 * n**3


def count_flops(model: torch.nn.Module, size_hw: tuple[int, int]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, *size_hw))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--matmul", type=int, default=2048, help="side of the ceiling matmul")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, rounds {args.rounds} "
        f"(SSDLite x{ROUNDS_FACTOR['ssdlite']}), load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    matmul, matmul_flops = make_matmul(args.matmul)
    for key in args.models:
        tv, ours, size_hw = build_pair(key)
        runs = variants(tv, ours, size_hw)
        flops = count_flops(ours, size_hw)
        print(
            f"\n## {MODELS[key][0]} at {size_hw[0]}x{size_hw[1]}: {flops / 1e9:.1f} GFLOP per image"
        )
        print(
            "| batch | variant | img/s median | img/s best | vs torchvision (median / best) "
            "| GFLOP/s median / best |"
        )
        print("|" + "---|" * 6)
        for batch in args.batches:
            images = torch.randn(batch, 3, *size_hw, generator=torch.Generator().manual_seed(batch))
            result = time_variants(runs, images, args.rounds * ROUNDS_FACTOR[key], matmul)
            times = result["times"]
            base_med = statistics.median(times["torchvision"])
            base_min = min(times["torchvision"])
            float32_path = f"ours {choose_path(batch)}"
            default_path = BF16 if resolve_precision("auto", "cpu") == "bf16" else float32_path
            for name in runs:
                med, best = statistics.median(times[name]), min(times[name])
                label = name
                if name == default_path:
                    label = f"{name} (predictor)"
                elif name == float32_path:
                    label = f"{name} (predictor, float32)"
                print(
                    f"| {batch} | {label} | {batch / med:.2f} | {batch / best:.2f} | "
                    f"{base_med / med:.2f}x / {base_min / best:.2f}x | "
                    f"{flops * batch / med / 1e9:.0f} / {flops * batch / best / 1e9:.0f} |"
                )
            for ceiling, precision in (("matmul", "float32"), ("matmul bf16", "bfloat16")):
                mm_med, mm_best = statistics.median(times[ceiling]), min(times[ceiling])
                print(
                    f"| {batch} | matmul {args.matmul}^3 {precision} (ceiling) | | | | "
                    f"{matmul_flops / mm_med / 1e9:.0f} / {matmul_flops / mm_best / 1e9:.0f} |"
                )
            paths = {float32_path: "matmul", default_path: "matmul bf16"}
            if default_path == float32_path:
                paths = {float32_path: "matmul"}
            for path, ceiling in paths.items():
                mm_med, mm_best = statistics.median(times[ceiling]), min(times[ceiling])
                path_med, path_best = statistics.median(times[path]), min(times[path])
                print(
                    f"(batch {batch}: predictor path {path} at "
                    f"{mm_med / (path_med / batch) * flops / matmul_flops:.0%} / "
                    f"{mm_best / (path_best / batch) * flops / matmul_flops:.0%} of the "
                    f"{ceiling} ceiling, median / best)"
                )
            diff, load = result["max_diff"], os.getloadavg()[0]
            print(
                f"(batch {batch}: largest output difference, of the largest output: "
                f"{diff['float32']:.1e} between float32 variants, {diff['bf16']:.1e} bfloat16 "
                f"against float32; load average now {load:.1f})"
            )


if __name__ == "__main__":
    main()
