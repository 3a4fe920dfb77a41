"""Fingerprinted static URLs: a file's URL names its content, so browsers may keep it for a year.

`asset_url("widget/widget.css")` (a template global) gives `/static/widget/widget.<hash>.css`, the hash
being the first hex digits of the file's SHA-256. The names are computed once, when the app starts, from
the files under static/; a deploy that changes a file restarts the app and so changes its URL, and a
browser holding the old copy never asks for it again. WhiteNoise serves each hashed name from the
same file as the plain one, with its gzip and brotli copies (`make assets`), and marks it immutable.

The plain names keep answering with a short max-age: embed.js is loaded by URL from institutions' pages,
and a page cached before a deploy may still ask for an old name.

Hashing at start-up rather than in a build step keeps one source of truth (the files themselves):
there is no manifest to forget to rebuild, and `make run`, `make test` and production agree.

The hash names the plain file only, so a gzip or brotli copy left over from before a change (a deploy
that copied the sources but did not run `make assets`) would go out under the new, immutable URL with
the old bytes. `FreshCopiesOnly` serves a copy only when it decompresses to the file's current bytes,
checked once per file at start-up; a stale one is skipped with a warning (never deleted: deploys may
be read-only), and that file goes out uncompressed until `make assets` remakes its copies.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, url_for
from whitenoise import WhiteNoise

log = logging.getLogger(__name__)

HASH_DIGITS = 12
IMMUTABLE = "public, max-age=31536000, immutable"
_EXTENSION = "static_fingerprints"
_COMPRESSED_COPIES = (".gz", ".br")


def fingerprinted_names(root: Path) -> dict[str, str]:
    """Each file under `root` (its path relative to root, with /) → the same path with its content hash
    before the suffix: `vendor/htmx.min.js` → `vendor/htmx.min.<hash>.js`. Compressed copies and dot
    files (build stamps) are not assets of their own."""
    names: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix in _COMPRESSED_COPIES or path.name.startswith("."):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_DIGITS]
        relative = path.relative_to(root)
        names[relative.as_posix()] = relative.with_name(f"{path.stem}.{digest}{path.suffix}").as_posix()
    return names


def install_fingerprints(app: Flask, names: dict[str, str]) -> None:
    """Make `asset_url` available to templates (and code) for this app's fingerprinted names."""
    app.extensions[_EXTENSION] = names
    app.jinja_env.globals["asset_url"] = asset_url


def asset_url(path: str) -> str:
    """The fingerprinted URL of static/`path`; the plain /static/ URL for a file unknown at start-up."""
    names: dict[str, str] = current_app.extensions.get(_EXTENSION, {})
    return url_for("static", filename=names.get(path, path))


def copy_is_fresh(copy: str) -> bool:
    """True when the compressed file `copy` (`….gz` or `….br`) decompresses to exactly the file beside it."""
    try:
        packed = Path(copy).read_bytes()
        plain = Path(copy[:-3]).read_bytes()
        if copy.endswith(".gz"):
            return gzip.decompress(packed) == plain
        # flask-compress's dependency; without it a .br copy cannot be checked, so it is not sent.
        import brotli  # type: ignore[import-untyped]

        return bool(brotli.decompress(packed) == plain)
    except Exception:  # unreadable, corrupt (gzip, zlib and brotli each raise their own) or no brotli: not sent
        return False


class _StaleCopiesHidden(Mapping[str, os.stat_result]):
    """The stat lookup WhiteNoise makes for a file and its copies, with stale copies reported missing
    (WhiteNoise then leaves that encoding out, as when no copy was made)."""

    def __init__(self, path: str, stats: Mapping[str, os.stat_result] | None, fresh: Callable[[str], bool]) -> None:
        self.path = path
        self.stats = stats
        self.fresh = fresh

    def __getitem__(self, name: str) -> os.stat_result:
        found = os.stat(name) if self.stats is None else self.stats[name]  # a missing file raises here
        if name != self.path and name.endswith(_COMPRESSED_COPIES) and not self.fresh(name):
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(()) if self.stats is None else iter(self.stats)

    def __len__(self) -> int:
        return 0 if self.stats is None else len(self.stats)


class FreshCopiesOnly(WhiteNoise):
    """WhiteNoise sending a gzip or brotli copy only when it holds the file's current bytes.

    WhiteNoise looks a file's copies up in its stat cache; this one reports a stale copy as missing,
    so WhiteNoise leaves that encoding out exactly as when no copy was made."""

    def __init__(self, application: Any, **options: Any) -> None:
        self._fresh: dict[str, bool] = {}  # before WhiteNoise scans `root`, which asks
        super().__init__(application, **options)

    def get_static_file(self, path: str, url: str, stat_cache: Mapping[str, os.stat_result] | None = None) -> Any:
        return super().get_static_file(path, url, stat_cache=_StaleCopiesHidden(path, stat_cache, self.is_fresh))

    def is_fresh(self, copy: str) -> bool:
        """Checked once per copy (a file answers under its plain and its hashed URL)."""
        if copy not in self._fresh:
            self._fresh[copy] = copy_is_fresh(copy)
            if not self._fresh[copy]:
                log.warning("%s does not hold the current %s (run `make assets`); sending the file uncompressed",
                            copy, os.path.basename(copy[:-3]))
        return self._fresh[copy]
