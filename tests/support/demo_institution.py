"""The demo institution a running app uses, read the way an operator reads it.

A server started on the embedded sandbox onboards its demo institution on first
use and keeps the key in its own database. Tests that act "elsewhere" with the
same key (another system of the institution, the results API) read it in a
separate process with the server's own environment, as `flask passid demo` does,
so nothing in the test process shares state with the server.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from tests.support.servers import BIN, ROOT, AppServer

_READ = (
    "from app import create_app\n"
    "from app.plumbing.passid_connection import passid_connection\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    c = passid_connection()\n"
    "    print(c.api_key, c.institution_id)\n"
)


@dataclass(frozen=True)
class DemoInstitution:
    key: str
    institution_id: str


# Read once per database: a database's demo institution, once onboarded, keeps its key and id (nothing in the
# app changes them), and each read starts a Python that imports the whole app (a second or two under load).
_READ_BEFORE: dict[tuple[str, str], DemoInstitution] = {}


def demo_institution(server: AppServer) -> DemoInstitution:
    """The sandbox key and institution id `server` uses (onboarding it if nothing has yet)."""
    database = (server.env.get("DATABASE_URL", ""), server.env.get("PASSID_INSTANCE_DIR", ""))
    if database not in _READ_BEFORE:
        _READ_BEFORE[database] = _read(server)
    return _READ_BEFORE[database]


def _read(server: AppServer) -> DemoInstitution:
    out = subprocess.run(
        [str(BIN / "python"), "-c", _READ],
        cwd=ROOT, env=dict(server.env, PORT=str(server.port)), capture_output=True, text=True, check=True,
        timeout=60,
    )
    key, institution_id = out.stdout.strip().splitlines()[-1].split()
    return DemoInstitution(key, institution_id)
