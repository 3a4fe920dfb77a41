"""The gzip and brotli copies of static/ that WhiteNoise serves (`make assets`), the gzip ones by Zopfli.

Zopfli writes ordinary gzip, which every client reads, about 3 % smaller than zlib's best level (htmx:
16,873 → 16,380 bytes), at the cost of a slower build (under a second for htmx). The widget's first visit is
held to 25 KB gzip (`bench/weight.py`): those bytes are won once per build, not paid by every customer on a
costly data plan. WhiteNoise's own `Compressor` does the rest as before: which files are worth compressing,
brotli, and keeping a copy only where it saves something.

Run: `python -m app.plumbing.static_compression static`.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zopfli.gzip
from whitenoise.compress import Compressor


class ZopfliCompressor(Compressor):
    """WhiteNoise's compressor with Zopfli's gzip: the same bytes once decompressed (`copy_is_fresh` holds)."""

    @staticmethod
    def compress_gzip(data: bytes) -> bytes:
        return bytes(zopfli.gzip.compress(data))  # mtime 0, as WhiteNoise's own: a copy depends on its file only


def compress_tree(root: Path) -> list[str]:
    """Write the copies of every file under `root` worth compressing; the copies' names."""
    compressor = ZopfliCompressor(quiet=True)
    files = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
             if compressor.should_compress(name)]
    with ThreadPoolExecutor() as pool:
        return [copy for copies in pool.map(compressor.compress, files) for copy in copies]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("root", type=Path, help="the folder of static files (static)")
    compress_tree(parser.parse_args().root)


if __name__ == "__main__":
    main()
