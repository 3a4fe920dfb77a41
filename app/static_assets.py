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
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask, current_app, url_for

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
