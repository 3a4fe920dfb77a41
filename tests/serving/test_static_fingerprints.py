"""Fingerprinted static URLs: a file's URL changes with its bytes, so it may be cached for a year.

The hashing is unit-tested on a scratch directory; the serving in-process, through WhiteNoise as
production serves it (the gzip copies come from `make assets`).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from flask.testing import FlaskClient

from app.static_assets import fingerprinted_names

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
