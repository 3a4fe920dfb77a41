"""The QR, drawn on our server as inline SVG (no image service, no QR script).

`qrcode` encodes the deep link; we draw its matrix as one path of horizontal
runs, which is about a quarter of the bytes of qrcode's own per-module SVG —
this page is for phones on costly data. Cached by deep link: a deep link never
changes its picture. The cache is per worker and small: an entry is about 5 KB
and a session's QR is drawn again only when its page is (a reload without
JavaScript, "Try again"), while a fresh drawing takes about a millisecond
(bench/qr_render.py); 1,024 entries held some 5 MB of one-off pictures in every
worker that had opened that many sessions.
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
from markupsafe import Markup


@lru_cache(maxsize=256)
def qr_svg(data: str, label: str = "QR code") -> Markup:
    # A fixed mask: any of the eight reads fine, and trying all eight (qrcode's
    # default) is five times the work of the rest of the render.
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2, mask_pattern=2)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(
        f'<svg class="passid-qr" viewBox="0 0 {size} {size}" role="img" aria-label="{Markup.escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )
