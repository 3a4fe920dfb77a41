"""What a serving worker loads: none of the libraries that only staff pages or the command line use.

Each Granian worker imports `wsgi:app` itself after the fork, so every library the app imports is paid for
once per worker (docs/operating.md, "Memory"). Alembic (with Flask-Migrate, Mako, Pygments and every
SQLAlchemy dialect it supports), `webauthn` (with pyOpenSSL and pyasn1) and Authlib (with joserfc) were
about 20 MB of each worker's memory; they are imported where a `flask db` command, a passkey ceremony or a
single sign-on runs. The check runs in a fresh interpreter, as a worker starts: `import wsgi`, then the
widget's page, `/healthz` and `/readyz` (the load balancer's probe, which reads the schema's revision).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.in_process import migrated_sqlite_url
from tests.support.servers import BIN, ROOT, base_env, free_port

STAFF_OR_COMMAND_LINE_ONLY = frozenset({
    "alembic", "flask_migrate", "mako", "pygments",  # `flask db …`
    "webauthn", "OpenSSL", "pyasn1", "cbor2",  # passkeys
    "authlib", "joserfc",  # single sign-on, when configured
})

_WORKER = """
import sys
import wsgi

client = wsgi.app.test_client()
for path in ("/verify", "/healthz", "/readyz"):
    client.get(path).close()
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_worker_serving_the_widget_loads_no_staff_or_command_line_library(tmp_path: Path) -> None:
    env = base_env(
        migrated_sqlite_url(tmp_path),
        PASSID_INSTANCE_DIR=str(tmp_path),
        PASSID_BACKGROUND_JOBS="false",
        # A live configuration, as production runs: /readyz asks PASSID (nothing listens there; it fails fast).
        PASSID_BASE_URL=f"http://127.0.0.1:{free_port()}",
        PASSID_API_KEY="sk_sandbox_0123456789abcdef0123456789",
        PASSID_WEBHOOK_SECRET="whsec_test_0123456789abcdef",
        PASSID_SANDBOX_ENABLED="false",
    )
    done = subprocess.run([str(BIN / "python"), "-c", _WORKER], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "app" in loaded and "qrcode" in loaded, done.stdout  # the widget's own libraries did load
    assert sorted(loaded & STAFF_OR_COMMAND_LINE_ONLY) == []


def test_flask_db_still_offers_flask_migrate_s_commands(tmp_path: Path) -> None:
    """The `db` group loads Flask-Migrate when used: its help lists Flask-Migrate's commands and options."""
    env = base_env(f"sqlite:///{tmp_path / 'app.db'}", PASSID_INSTANCE_DIR=str(tmp_path))
    done = subprocess.run([str(BIN / "flask"), "--app", "app", "db", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "upgrade" in done.stdout and "downgrade" in done.stdout and "--directory" in done.stdout, done.stdout
