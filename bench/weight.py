"""Weight of a first visit: compressed bytes on the wire, ours vs the React route.

Starts the app as production does (Granian, gzip on), loads /verify the way a
browser does (the HTML, then every stylesheet, script, icon and logo it links) in
English, in Arabic (right to left) and in dark mode, then
measures the extra bytes of the awaiting state (the requesting and awaiting
partials, QR included). For comparison it fetches react, react-dom and qrcode
from the npm registry and gzips their minified browser builds: what the React
component needs before its first pixel.

Run: `make bench` (or `.venv/bin/python -m bench.weight`).
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

import requests

from tests.support.servers import AppServer, base_env, migrate

REACT_PACKAGES = {
    "react@18.3.1": "package/umd/react.production.min.js",
    "react-dom@18.3.1": "package/umd/react-dom.production.min.js",
    "qrcode@1.5.1": "package/build/qrcode.js",  # the last release that ships a minified browser build,
}


def wire_bytes(session: requests.Session, method: str, url: str, **kwargs) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Bytes of the body as sent (still compressed) plus a rough header size, and the decoded text."""
    answer = session.request(method, url, stream=True, timeout=15, **kwargs)
    raw = answer.raw.read(decode_content=False)
    headers = sum(len(k) + len(v) + 4 for k, v in answer.headers.items())
    text = gzip.decompress(raw).decode() if answer.headers.get("Content-Encoding") == "gzip" else raw.decode()
    return len(raw) + headers, text


# The first visits `make bench` prints, each against the budget: the query that selects them.
FIRST_VISITS = {"en": "", "ar": "?locale=ar", "dark": "?colorScheme=dark"}
FIRST_VISIT_BUDGET = 25 * 1024


def first_visit(session: requests.Session, server: AppServer, query: str) -> tuple[dict[str, int], str]:
    """Bytes of the page and of everything it links (stylesheets, scripts, the icon, the logo), and the page."""
    html_bytes, html = wire_bytes(session, "GET", f"{server.url}/verify{query}")
    assets = re.findall(r'(?:href|src)="(/static/[^"]+|/verify/logo[^"]*)"', html)
    asset_bytes = {path: wire_bytes(session, "GET", server.url + path.replace("&amp;", "&"))[0] for path in assets}
    return {"html": html_bytes, **{Path(path.split("?")[0]).name: size for path, size in asset_bytes.items()}}, html


def measure_widget(server: AppServer) -> dict[str, int]:
    session = requests.Session()
    session.headers["Accept-Encoding"] = "gzip"
    files, html = first_visit(session, server, "")
    visits = {name: sum(first_visit(session, server, query)[0].values()) for name, query in FIRST_VISITS.items()}
    options = re.search(r'name="o" value="([^"]+)"', html).group(1)
    htmx = {"HX-Request": "true"}
    requesting, _ = wire_bytes(session, "POST", f"{server.url}/verify/qr", data={"o": options}, headers=htmx)
    awaiting, _ = wire_bytes(session, "POST", f"{server.url}/verify/qr/session", data={"o": options}, headers=htmx)
    return {
        **files,
        **{f"first visit (idle, {name})": size for name, size in visits.items()},
        "awaiting state, extra": requesting + awaiting,
    }


def measure_react() -> dict[str, int] | None:
    """gzip -9 sizes of the React route's browser builds, fetched from the npm registry."""
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, member in REACT_PACKAGES.items():
            try:
                packed = subprocess.run(
                    ["npm", "pack", spec, "--silent", "--pack-destination", tmp],
                    capture_output=True, text=True, check=True, timeout=120,
                ).stdout.strip().splitlines()[-1]
            except (subprocess.SubprocessError, OSError, IndexError):
                return None
            with tarfile.open(Path(tmp) / packed) as archive:
                source = archive.extractfile(member)
                assert source is not None
                sizes[spec] = len(gzip.compress(source.read(), compresslevel=9))
    sizes["React route, before first pixel"] = sum(sizes.values())
    return sizes


def main() -> None:
    # No options; `--help` says what the run does instead of starting it.
    argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = base_env(f"sqlite:///{tmp}/bench.db", PASSID_BACKGROUND_JOBS="false")
        migrate(env)
        server = AppServer(env, Path(tmp) / "app.log").start()
        try:
            ours = measure_widget(server)
        finally:
            server.stop()
    react = measure_react()
    print("\nWeight of a first visit (compressed bytes on the wire)")
    print(f"{'what':<40}{'bytes':>10}")
    for name, size in ours.items():
        print(f"{name:<40}{size:>10,}")
    if react:
        for name, size in react.items():
            print(f"{name:<40}{size:>10,}")
        ratio = ours["first visit (idle, en)"] / react["React route, before first pixel"]
        print(f"{'ours ÷ React route':<40}{ratio:>10.2f}")
    else:
        print("(npm registry unreachable: React comparison skipped)")
    budget = {**{f"first visit (idle, {name})": FIRST_VISIT_BUDGET for name in FIRST_VISITS},
              "awaiting state, extra": 6 * 1024}
    for name, limit in budget.items():
        print(f"{name + ' ÷ budget':<40}{ours[name] / limit:>10.2f}")


if __name__ == "__main__":
    main()
