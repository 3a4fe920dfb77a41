"""Fingerprinted static URLs: a file's URL changes with its bytes, so it may be cached for a year.

The hashing is unit-tested on a scratch directory; the serving in-process, through WhiteNoise as
production serves it (the gzip copies come from `make assets`).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import Client

from app.plumbing.static_assets import FreshCopiesOnly, fingerprinted_names

ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')
HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.[a-z]+")


def test_a_name_carries_the_hash_of_the_bytes_and_changes_with_them(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    script = tmp_path / "vendor" / "htmx.min.js"
    script.write_text("one")
    (tmp_path / "vendor" / "htmx.min.js.gz").write_bytes(gzip.compress(b"one"))
    (tmp_path / ".compressed").touch()
    before = fingerprinted_names(tmp_path)
    assert list(before) == ["vendor/htmx.min.js"]  # no compressed copy, no build stamp
    assert re.fullmatch(r"vendor/htmx\.min\.[0-9a-f]{12}\.js", before["vendor/htmx.min.js"])
    assert fingerprinted_names(tmp_path) == before  # stable while the bytes are
    script.write_text("two")
    assert fingerprinted_names(tmp_path)["vendor/htmx.min.js"] != before["vendor/htmx.min.js"]


def test_every_page_links_fingerprinted_assets_only(client: FlaskClient) -> None:
    for path in ("/verify", "/sandbox/phone", "/staff/sign-in"):
        assets = ASSET.findall(client.get(path).text)
        assert assets, path
        assert all(HASHED.fullmatch(asset) for asset in assets), assets


def test_a_hashed_url_is_immutable_for_a_year_and_the_plain_one_short(client: FlaskClient) -> None:
    css = next(a for a in ASSET.findall(client.get("/verify").text) if a.endswith(".css"))
    hashed = client.get(css)
    plain = client.get("/static/widget/widget.css")
    assert hashed.status_code == plain.status_code == 200
    assert hashed.data == plain.data == (Path(__file__).parents[2] / "static/widget/widget.css").read_bytes()
    assert hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["Content-Type"].startswith("text/css")
    assert hashed.headers["X-Content-Type-Options"] == "nosniff"
    assert plain.headers["Cache-Control"] == "max-age=3600, public"


def test_a_hashed_url_still_goes_out_compressed(client: FlaskClient) -> None:
    script = next(a for a in ASSET.findall(client.get("/verify").text) if "widget/widget." in a and a.endswith(".js"))
    answer = client.get(script, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.data) == (Path(__file__).parents[2] / "static/widget/widget.js").read_bytes()


def _nothing_else(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not a static file"]


def test_a_compressed_copy_older_than_its_file_is_never_sent(tmp_path: Path) -> None:
    """A deploy that changed a file but not its .gz/.br copies: its new, immutable URL must not send the old bytes."""
    import brotli  # type: ignore[import-untyped]

    (tmp_path / "widget").mkdir()
    stale, fresh = tmp_path / "widget" / "stale.css", tmp_path / "widget" / "fresh.css"
    stale.write_text("body{color:red}" * 50)
    (tmp_path / "widget" / "stale.css.gz").write_bytes(gzip.compress(stale.read_bytes()))
    (tmp_path / "widget" / "stale.css.br").write_bytes(brotli.compress(stale.read_bytes()))
    stale.write_text("body{color:blue}" * 50)  # changed after its copies were made
    fresh.write_text("body{color:green}" * 50)
    (tmp_path / "widget" / "fresh.css.gz").write_bytes(gzip.compress(fresh.read_bytes()))
    (tmp_path / "widget" / "fresh.css.br").write_bytes(b"not brotli at all")  # corrupt: not sent either
    names = fingerprinted_names(tmp_path)
    static_files = FreshCopiesOnly(_nothing_else, root=str(tmp_path), prefix="static/")
    for plain, hashed in names.items():
        static_files.add_file_to_dictionary(f"/static/{hashed}", str(tmp_path / plain))
    browser = Client(static_files)

    for url in (f"/static/{names['widget/stale.css']}", "/static/widget/stale.css"):
        for encoding in ("gzip", "br", "gzip, br"):
            answer = browser.get(url, headers={"Accept-Encoding": encoding})
            assert answer.status_code == 200
            assert "Content-Encoding" not in answer.headers, (url, encoding)
            assert answer.data == stale.read_bytes()
    fresh_url = f"/static/{names['widget/fresh.css']}"
    gzipped = browser.get(fresh_url, headers={"Accept-Encoding": "gzip, br"})
    assert gzipped.headers["Content-Encoding"] == "gzip"  # the good copy still goes out; the corrupt .br does not
    assert gzip.decompress(gzipped.data) == fresh.read_bytes()
    assert "Content-Encoding" not in browser.get(fresh_url, headers={"Accept-Encoding": "br"}).headers
