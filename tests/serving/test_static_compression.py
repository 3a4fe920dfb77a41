"""`make assets`' compressed copies: Zopfli's gzip, smaller than zlib's best, and still the file's own bytes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from app.config import PROJECT_ROOT
from app.plumbing.static_assets import copy_is_fresh
from app.plumbing.static_compression import compress_tree


def test_the_gzip_copies_are_smaller_than_zlib_s_and_hold_each_file_s_bytes(tmp_path: Path) -> None:
    source = PROJECT_ROOT / "static" / "widget"
    for name in ("widget.js", "widget.css", "embed.js"):
        shutil.copyfile(source / name, tmp_path / name)
    (tmp_path / "tiny.txt").write_text("ok")  # nothing to win: no copy

    copies = compress_tree(tmp_path)

    assert sorted(Path(copy).name for copy in copies) == sorted(
        f"{name}{suffix}" for name in ("widget.js", "widget.css", "embed.js") for suffix in (".gz", ".br"))
    for name in ("widget.js", "widget.css", "embed.js"):
        plain = (tmp_path / name).read_bytes()
        packed = (tmp_path / f"{name}.gz").read_bytes()
        assert gzip.decompress(packed) == plain
        assert len(packed) < len(gzip.compress(plain, compresslevel=9, mtime=0))
        assert copy_is_fresh(str(tmp_path / f"{name}.gz")) and copy_is_fresh(str(tmp_path / f"{name}.br"))
