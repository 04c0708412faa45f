"""CPU data parallelism without a launcher: ``train.processes`` starts the training processes.

``ssd train --set train.processes=2`` (or ``auto``: one per core) on the CPU starts that many
processes itself (``torch.multiprocessing``, spawn), joined in a gloo process group over a TCP
store on 127.0.0.1, exactly as ``torchrun --nproc-per-node N -m ssdcli train`` would run them:
the same ``fit``, each rank a share of every global batch, rank 0 logging, evaluating and
writing checkpoints. Each process runs ``cores / processes`` torch threads.

It stays off by default (``train.processes: 1``): on a 2-core CPU no setting that kept the
recipe's accuracy beat one process with two threads (measurements in ``docs/benchmarks.md``).
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
    from ssdcli.console import make_console
    from ssdcli.train.loop import fit

    result = fit(recipe, run_dir, "cpu", resume=resume, console=make_console(), manifest=manifest)
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
