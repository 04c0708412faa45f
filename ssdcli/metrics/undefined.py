"""One convention for metrics that are undefined (no ground truth in their bucket: e.g. COCO AP of
small objects on a data set without small objects, or a class absent from a split).

The metric functions return NaN for them. Whatever shows or stores a metric goes through these
functions: ``-`` for people (terminal lines and tables), an empty cell in CSV, ``null`` in JSON.
No numpy or torch here: the command line and the run log import it.
"""

from __future__ import annotations

import math

SHOWN = "-"
"""How an undefined metric is shown to people."""


def is_undefined(value: float | None) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def metric_text(value: float | None, digits: int = 4) -> str:
    """``0.1234`` for people; ``-`` when undefined."""
    return SHOWN if is_undefined(value) else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def metric_csv(value: float | int | None) -> str:
    """A CSV cell: ``%.6g`` (integers as they are); empty when undefined."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "" if is_undefined(value) else f"{float(value):.6g}"  # type: ignore[arg-type]


def metric_json(value: float | None) -> float | None:
    """A JSON number; ``None`` (``null``) when undefined."""
    return None if is_undefined(value) else float(value)  # type: ignore[arg-type]
