"""Server-side QR render time per code: uncached and from the cache by deep link.

Uncached calls `app.widget.qr.qr_svg.__wrapped__` (the drawing itself) on
distinct deep links shaped like the sandbox's; cached calls `qr_svg` again
with links it has already drawn, as a re-rendered awaiting state does.
In-process, no server: this is the cost inside one request.

Run: `make bench` (or `.venv/bin/python -m bench.qr_render [--codes 300]`).
"""

from __future__ import annotations

import argparse
import secrets
import time

from app.widget.qr import qr_svg
from bench.support import machine_note, ms, percentile, print_table


def deep_link() -> str:
    """Shaped like the sandbox's: passid://verify-request?r=req_<22>&i=inst_<22>."""
    def ident(prefix: str) -> str:
        return f"{prefix}_{secrets.token_urlsafe(16).replace('-', 'x').replace('_', 'y')}"

    return f"passid://verify-request?r={ident('req')}&i={ident('inst')}"


def timed(draw, links: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for link in links:
        started = time.perf_counter()
        draw(link, "QR code to scan with the PASSID app")
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=300, help="distinct deep links (default 300)")
    args = parser.parse_args()
    note = machine_note()
    links = [deep_link() for _ in range(args.codes)]
    timed(qr_svg.__wrapped__, [deep_link() for _ in range(20)])  # warm-up: imports, first allocations
    uncached = timed(qr_svg.__wrapped__, links)
    qr_svg.cache_clear()
    held = links[: qr_svg.cache_info().maxsize]  # what the cache holds at once (more would evict as they go)
    timed(qr_svg, held)  # fills the cache
    cached = timed(qr_svg, held)
    size = len(qr_svg(links[0], "QR code to scan with the PASSID app"))
    rows = [
        ["uncached (qr_svg.__wrapped__)", len(uncached), ms(percentile(uncached, 50)), ms(percentile(uncached, 99)),
         "≤ 5"],
        ["cached by deep link (qr_svg)", len(cached), ms(percentile(cached, 50), 4), ms(percentile(cached, 99), 4),
         "≤ 5"],
    ]
    print_table(f"Server-side QR render per code, in-process (ms; {note})", ["what", "n", "p50", "p99", "target"],
                rows)
    print(f"one code's inline SVG: {size:,} bytes before compression; cache holds {qr_svg.cache_info().maxsize} codes")
    print("every new QR session has a new deep link, so its first render is the uncached one")


if __name__ == "__main__":
    main()
