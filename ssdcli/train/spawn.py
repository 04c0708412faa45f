"""CPU data parallelism without a launcher: ``train.processes`` starts the training processes.

``ssd train --set train.processes=2`` (or ``auto``: one per core) on the CPU starts that many
processes itself (``torch.multiprocessing``, spawn), joined in a gloo process group over a TCP
store on 127.0.0.1, exactly as ``torchrun --nproc-per-node N -m ssdcli train`` would run them:
the same ``fit``, each rank a share of every global batch, rank 0 logging, evaluating and
writing checkpoints. Each process runs ``cores / processes`` torch threads (measured: the tiny
network's small tensors keep two intra-op threads only ~1.15 cores busy).

Measured on the shared 2-core host while other jobs kept its load average at 6-12 (so only
ratios within a few minutes mean anything), ``shapes_tiny`` for 100 iterations without
evaluation, images/s per 20-step window:

* ``torchrun --nproc-per-node 2`` with synchronised batch norm, 1 thread each: 10-15 against
  14-32 for one process (2 threads, 1 loader worker), about 0.6x: each of the tiny network's
  batch norms costs five gloo all-reduces per step, and every one waits for the slower process.
* two processes, batch-norm statistics per process: 17-31 under torchrun (1.3x of one process in
  the same minutes); then ``train.processes=auto`` (``sync_batchnorm: false``) 21.4 and 22.7
  images/s over the whole run against 24.0 and 28.1 for one process, runs alternated, 0.70-0.87
  cores busy in all four: with the host's other jobs taking over half of the two cores there was
  nothing for a second process to gain.

So ``train.processes`` stays 1 by default: no measurement here showed a win, the synchronised
form (whose result equals one process's) was slower, and the unsynchronised one changes the maths
(batch norm over 4 images instead of 8) with an accuracy not yet measured on the full recipe.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssdcli.config import Recipe
    from ssdcli.train.loop import TrainResult

__all__ = ["process_count", "spawn_fit", "threads_per_process"]


def process_count(setting: int | str, device_type: str, cpu_count: int | None = None) -> int:
    """Training processes to start for ``train.processes`` on ``device_type``.

    1 off the CPU (accelerators use ``torchrun``) and under a launcher (``WORLD_SIZE`` set);
    ``"auto"`` is one per core.
    """
    if device_type != "cpu" or "WORLD_SIZE" in os.environ:
        return 1
    if setting == "auto":
        return max(1, cpu_count or os.cpu_count() or 1)
    return max(1, int(setting))


def threads_per_process(processes: int, cpu_count: int | None = None) -> int:
    """Torch threads of each process: the cores shared out, at least one."""
    return max(1, (cpu_count or os.cpu_count() or 1) // processes)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    world: int,
    port: int,
    threads: int,
    recipe: Recipe,
    run_dir: Path,
    resume: bool,
    manifest: Any,
    results: Any,
) -> None:
    """One training process: joins the group as ``rank`` and runs ``fit``."""
    import torch

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(threads)
    from rich.console import Console

    from ssdcli.train.loop import fit

    result = fit(recipe, run_dir, "cpu", resume=resume, console=Console(), manifest=manifest)
    if rank == 0:
        results.put(result)


def spawn_fit(
    recipe: Recipe,
    run_dir: Path,
    processes: int,
    resume: bool = False,
    manifest: Any = None,
) -> TrainResult:
    """Trains with ``processes`` CPU processes on this machine; returns rank 0's result.

    Ctrl-C reaches every process (one process group): each saves a checkpoint and stops, while
    this parent waits for them.

    Raises:
        torch.multiprocessing.ProcessRaisedException: a training process failed (its error).
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    port = _free_port()
    threads = threads_per_process(processes)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the children handle Ctrl-C
    try:
        mp.start_processes(
            _worker,
            args=(processes, port, threads, recipe, Path(run_dir), resume, manifest, results),
            nprocs=processes,
            join=True,
            start_method="spawn",
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    return results.get()
