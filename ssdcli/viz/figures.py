"""Matplotlib figures without pyplot: make one on an Agg canvas, get PNG bytes, or save it.

matplotlib is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Any:
    """A matplotlib ``Figure`` on its own Agg canvas (no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG file contents."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def save_figure(figure: Any, out_png: str | Path) -> Path:
    """Writes the figure (format from the extension), creating the folder; returns the path."""
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
