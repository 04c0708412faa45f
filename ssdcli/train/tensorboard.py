"""Optional TensorBoard logging (``train.tensorboard: true``; the ``tensorboard`` extra).

Every row :class:`~ssdcli.train.runlog.MetricsLog` writes to ``metrics.csv`` also becomes scalars
at its iteration (``train/loss``, ``val/voc07_map50``, ...), and the validation previews become
images, in ``<run>/tensorboard``. Without the package the run stops before it starts, with one
line saying how to install it or turn the option off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ssdcli.errors import RecipeError
from ssdcli.train.runlog import MetricsLog

_NOT_SCALARS = ("iteration", "epoch")


def _summary_writer_class() -> Any:
    """torch's ``SummaryWriter`` (ImportError when tensorboard is not installed)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter


def require_tensorboard(enabled: bool) -> None:
    """RecipeError when ``enabled`` but the tensorboard package cannot be imported."""
    if not enabled:
        return
    try:
        _summary_writer_class()
    except ImportError as error:
        raise RecipeError(
            "train.tensorboard is true but the tensorboard package is not installed; fix: "
            "pip install 'ssdcli[tensorboard]' (or tensorboard), or --set train.tensorboard=false"
        ) from error


class TensorBoardLog(MetricsLog):
    """A :class:`MetricsLog` that also writes each row's numbers as TensorBoard scalars.

    Attributes:
        writer: the ``SummaryWriter`` (log folder ``<run>/tensorboard``).
    """

    def __init__(self, path: Path, resume_iteration: int | None, writer: Any) -> None:
        super().__init__(path, resume_iteration)
        self.writer = writer

    def add(self, values: Mapping[str, float | int]) -> None:
        super().add(values)
        step = int(values["iteration"])
        for key, value in values.items():
            if key not in _NOT_SCALARS:
                group = "val" if key.startswith(("voc", "coco")) else "train"
                self.writer.add_scalar(f"{group}/{key}", float(value), step)
        self.writer.flush()  # rows are rare (log_every); nothing is lost if the run is killed

    def add_image(self, tag: str, image_rgb: np.ndarray, iteration: int) -> None:
        """Logs a uint8 [H, W, 3] RGB image."""
        self.writer.add_image(tag, image_rgb, iteration, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_metrics_log(
    path: Path, resume_iteration: int | None, tensorboard: bool
) -> MetricsLog | TensorBoardLog:
    """The run's ``metrics.csv`` writer, logging to TensorBoard too when ``tensorboard``."""
    if not tensorboard:
        return MetricsLog(path, resume_iteration)
    writer = _summary_writer_class()(log_dir=str(Path(path).parent / "tensorboard"))
    return TensorBoardLog(path, resume_iteration, writer)
