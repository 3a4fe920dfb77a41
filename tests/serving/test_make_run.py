"""The tests start the app with the command `make run` uses, so they prove what production runs."""

from __future__ import annotations

import os
import shlex
import subprocess

from tests.support.servers import DEFAULT_SERVER, ROOT, THREADS, serve_command


def test_make_run_starts_the_server_the_tests_start() -> None:
    # Run from `make test`, the child make would inherit MAKEFLAGS and print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", "HOST=127.0.0.1", "PORT=5999", "WORKERS=3",
         f"THREADS={THREADS}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    started = shlex.split(next(line for line in reversed(dry_run.splitlines()) if f"/{DEFAULT_SERVER} " in line))
    expected = serve_command(DEFAULT_SERVER, "127.0.0.1", 5999, 3, THREADS)
    assert started[0].endswith(f"/bin/{DEFAULT_SERVER}"), started
    assert started[1:] == expected[1:]
