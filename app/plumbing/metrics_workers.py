"""One metrics folder per Granian server, so that `/metrics` adds up every worker's figures.

prometheus_client's multiprocess mode: each worker process writes its figures to memory-mapped files in
`PROMETHEUS_MULTIPROC_DIR`, and a scrape, whichever worker answers it, reads them all. The folder must
start empty with each *server* (a new server's counters start at zero), not with each worker: a worker
Granian starts again after a crash joins its server's figures, and the counts of the one that died stay
in the sum, as a counter's must.

So the folder belongs to the server: `<instance>/metrics/<pid>-<start time>` of Granian's main process,
every worker's parent. The first worker of a new server makes it; every worker, as it starts, removes
the folders of servers no longer running (each restart leaves one behind) and the live-gauge files of
its server's workers that died, so the connection gauges count live processes only. Two servers on one
instance folder (the tests, a blue-green switch on one host) each keep their own. Nothing for an
operator to clean, and nothing to set: `PROMETHEUS_MULTIPROC_DIR` is set by the app, for its workers.

Anything that is not a Granian worker (`flask run`, the CLI, tests that build the app in their own
process) keeps its figures in its own memory, per app: it is one process, with nothing to add up.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import sys
import threading
from pathlib import Path

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import mark_process_dead

from app.plumbing.file_modes import create_private_file, private_directory

FOLDER = "metrics"
# The files prometheus_client writes per process for the kinds of metric the app has (counters,
# histograms, gauges summed over live processes), made 0600 and laid out before it opens them (it keeps
# their mode, and a scrape reads every file in the folder, so none may be left empty).
_FILE_KINDS = ("counter", "histogram", "gauge_livesum")
_SERVER_FOLDER = re.compile(r"^(\d+)-(\d+)$")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")
_switch_lock = threading.Lock()
_shared_folder: list[Path] = []  # the one folder this process writes to, once chosen


def granian_server_pid() -> int | None:
    """The pid of the Granian server this process is a worker of; None when it is not one."""
    if "granian" not in sys.modules:
        return None
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or os.getppid() != parent.pid:
        return None
    return parent.pid


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc): with the pid, names one process
    for good, where a pid alone may be reused. None when no such process runs; "0" without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "0"
    return stat.rpartition(")")[2].split()[19]


def share_between_workers(instance_dir: Path) -> Path | None:
    """In a Granian worker: this server's folder, ready, and prometheus_client writing there. Else None."""
    server = granian_server_pid()
    started = start_time(server) if server is not None else None
    if server is None or started is None:
        return None
    with _switch_lock:
        if _shared_folder:  # a second app in one worker: the same folder, the same files
            return _shared_folder[0]
        base = instance_dir / FOLDER
        private_directory(base)
        folder = base / f"{server}-{started}"
        private_directory(folder)
        forget_stopped_servers(base, keep=folder.name)
        forget_dead_workers(folder)
        for kind in _FILE_KINDS:
            path = folder / f"{kind}_{os.getpid()}.db"
            create_private_file(path)
            MmapedDict(str(path)).close()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        # prometheus_client picks its value class from that variable when first imported, which may have
        # been before it was set: pick again, now, before any metric exists in this process.
        values.ValueClass = values.get_value_class()
        _shared_folder.append(folder)
        return folder


def forget_stopped_servers(base: Path, *, keep: str) -> None:
    """Remove the folders of servers that no longer run (their pid is gone, or now names another process)."""
    for folder in base.iterdir():
        found = _SERVER_FOLDER.match(folder.name)
        if folder.name == keep or found is None or not folder.is_dir():
            continue
        if start_time(int(found.group(1))) != found.group(2):
            shutil.rmtree(folder, ignore_errors=True)  # a sibling worker may be removing it too


def forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that died (a respawned worker's predecessor), and any left under
    this process's own pid: they were a dead worker's, and would otherwise be counted as this one's."""
    for path in folder.iterdir():
        found = _LIVE_GAUGE_FILE.match(path.name)
        if found is None:
            continue
        pid = int(found.group(1))
        if pid == os.getpid() or not _running(pid):
            mark_process_dead(pid, str(folder))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
