"""Small HTML helpers for the report: escaped tables, embedded images, the page shell.

No JavaScript and nothing fetched: every image is a ``data:`` URI, the style sheet is inline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery img { max-height: 420px; }
.gallery figure { margin: 0; border: 1px solid #ddd; padding: 4px; font-size: 0.8em; }
.legend span { display: inline-block; margin-right: 1.2em; font-size: 0.85em; }
.swatch { display: inline-block; width: 1em; height: 1em; vertical-align: middle;
          margin-right: 0.3em; border: 1px solid #444; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
.note { color: #555; font-size: 0.9em; }
"""


def esc(value: object) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def png_img(data: bytes, alt: str, width: int | None = None) -> str:
    """An ``<img>`` holding PNG bytes as a data URI."""
    size = f' width="{width}"' if width else ""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}"{size} src="data:image/png;base64,{encoded}">'


def jpeg_img(image_rgb: np.ndarray, alt: str, quality: int = 85) -> str:
    """An ``<img>`` holding an RGB uint8 [H, W, 3] image as a JPEG data URI."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # OpenCV always encodes uint8 RGB; kept as a guard against odd inputs
        raise ValueError(f"cannot encode image {alt!r} as JPEG")
    encoded = base64.b64encode(data.tobytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/jpeg;base64,{encoded}">'


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain table; cells are escaped (pass numbers already formatted)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def legend(items: dict[str, tuple[int, int, int]]) -> str:
    """Colour swatches with their meaning."""
    spans = "".join(
        f'<span><i class="swatch" style="background: rgb{rgb}"></i>{esc(text)}</span>'
        for text, rgb in items.items()
    )
    return f'<p class="legend">{spans}</p>'


def page(title: str, sections: Sequence[str]) -> str:
    """The whole document."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
