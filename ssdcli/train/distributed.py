"""Data-parallel training helpers: process group from ``torchrun`` variables, sharding, reductions.

Launch: ``torchrun --nproc-per-node N -m ssdcli train RECIPE`` (multi-node: add ``--nnodes``,
``--node-rank`` and ``--rdzv-endpoint HOST:PORT``). ``torchrun`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; without them training runs in one process.

The data order is a pure function of ``(seed, epoch)``: one permutation of the split per epoch,
cut into global batches; rank ``r`` of ``W`` takes every ``W``-th sample of each global batch.
So the union of the ranks' batches at step ``i`` is exactly the one-process batch ``i``, and a
resumed run skips the batches already consumed in its epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

COLLECTIVE_TIMEOUT_S = 3 * 3600  # longest wait of a rank at a collective (e.g. during evaluation)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that logs, evaluates and writes checkpoints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1


def launched_distributed() -> bool:
    """True when ``torchrun`` (or an equivalent launcher) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_rank() -> bool:
    """False in the processes a launcher (``torchrun``) started with ``RANK`` > 0.

    Read from the environment, before any process group exists: rank 0 alone checks and writes
    the run folder while the command is still setting the run up.
    """
    return os.environ.get("RANK", "0") == "0"


def init_distributed(device_type: str) -> DistInfo:
    """Joins the process group described by the launcher's environment variables.

    Args:
        device_type: ``"cuda"`` uses NCCL, anything else gloo.

    Returns:
        The process's place in the job; ``DistInfo()`` when not launched distributed.
    """
    if not launched_distributed():
        return DistInfo()
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        # Rank 0 evaluates while the others wait at a barrier: allow long evaluations.
        dist.init_process_group(
            backend=backend,
            rank=info.rank,
            world_size=info.world_size,
            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S),
        )
    return info


def shutdown_distributed() -> None:
    """Leaves the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Waits for every rank (no-op in one process)."""
    if info.distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``tensor`` over ranks (a new tensor, no gradient); identity in one process."""
    if not info.distributed:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on any rank (used for stop requests).

    ``device`` must suit the backend: CUDA for NCCL, CPU for gloo.
    """
    if not info.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


class _DifferentiableAllReduce(torch.autograd.Function):
    """Sum over ranks whose backward sums the incoming gradients over ranks as well."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are computed over all ranks (works on CPU/gloo).

    ``torch.nn.SyncBatchNorm`` accepts only accelerator tensors; this one does the same maths
    with two differentiable all-reduces (mean, then centred variance), so gradients match a
    single process that sees the whole global batch. State-dict keys equal BatchNorm2d's.
    """

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x_BCHW)
        dims = (0, 2, 3)
        count = x_BCHW.new_tensor([float(x_BCHW.numel() // x_BCHW.shape[1])])
        count = _DifferentiableAllReduce.apply(count).detach()
        mean_C = _DifferentiableAllReduce.apply(x_BCHW.sum(dims)) / count
        centred = x_BCHW - mean_C.view(1, -1, 1, 1)
        var_C = _DifferentiableAllReduce.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 0.1 if self.momentum is None else self.momentum
                unbiased = var_C * (count / (count - 1).clamp(min=1))
                self.running_mean.lerp_(mean_C.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        y = centred * torch.rsqrt(var_C + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def convert_sync_batchnorm(model: nn.Module, device_type: str) -> tuple[nn.Module, int]:
    """Replaces every BatchNorm2d by a synchronised one; returns ``(model, count_converted)``."""
    count = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if count == 0:
        return model, 0
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model), count
    return _to_gloo_sync(model), count


def _to_gloo_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlooSyncBatchNorm):
        new = GlooSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        for param_new, param_old in zip(new.parameters(), module.parameters(), strict=True):
            param_new.requires_grad_(param_old.requires_grad)
        return new.to(next(module.buffers()).device) if list(module.buffers()) else new
    for name, child in module.named_children():
        module.add_module(name, _to_gloo_sync(child))
    return module
