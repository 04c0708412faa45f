"""Which copy of the network the eager predictor runs, by batch size and thread count.

Two copies compute the same function (within float32 rounding), from
:func:`ssdcli.model.fused_copy.optimize_for_inference`:

* ``"channels_last"``: the network with channels-last memory (oneDNN convolutions skip a layout
  reorder of every activation);
* ``"fused"``: the same plus folded batch norms, each convolution + activation one oneDNN
  primitive with weights packed once.

``benchmarks/bench_infer.py`` (SSD300, CPU) decides where each pays, and prints the path the
predictor takes (figures in ``docs/benchmarks.md``): at batch 1 the packed-weight convolutions
of the fused copy leave their blocked layout idle (0.62x of torchvision where channels-last ran
at 1.20x); from batch 8 on the fused copy is the faster one. Hence: channels-last below
``FUSED_MIN_BATCH`` images, fused from there on; off the CPU (no fusion there) always
channels-last.

In bfloat16 (``--precision bf16``, or ``auto`` on a CPU with native bf16) the channels-last copy
runs under autocast at every batch size: the fused copy's packed weights are float32 only, and
bf16 channels-last was the faster of the two at batch 8 as well (SSD300: see
``benchmarks/bench_detect.py``; the tiny network: 14.5 against 17.0 ms per batch of 8).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["FUSED_MIN_BATCH", "InferencePath", "choose_path"]

InferencePath = Literal["channels_last", "fused"]

FUSED_MIN_BATCH = 2
"""Smallest batch at which the fused copy runs (see the module docstring's measurements)."""


def choose_path(
    batch: int, device_type: str = "cpu", precision: str = "float32"
) -> InferencePath:
    """The copy to run a batch of ``batch`` images on ``device_type`` (``"cpu"``, ``"cuda"``..)
    in a resolved ``precision`` (``"float32"`` or ``"bf16"``, see
    :func:`ssdcli.device.resolve_precision`).

    The choice does not depend on the thread count: at 1 and 2 threads the same copy won at
    each batch size in ``benchmarks/bench_infer.py``.
    """
    if device_type != "cpu" or batch < FUSED_MIN_BATCH or precision == "bf16":
        return "channels_last"
    return "fused"
