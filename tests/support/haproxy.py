"""HAProxy from Debian in front of app servers on loopback, configured as docs/operating.md's recipe is.

The recipe ("The load balancer and TLS") says why each line is there. What differs here: loopback ports,
no TLS, the log on stdout (the file `log_path`), no stats frontend, and checks every 250 ms (two failures
and a host is out, two successes and it is back) instead of every 2 s, so the tests wait for a fraction of
a second. The stats socket says what HAProxy thinks of each host (`states`).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.servers import free_port

HAPROXY = Path("/usr/sbin/haproxy")
BACKEND = "verify_hosts"
# The access log's format: the request's path without its query string (the widget's poll carries a bearer
# handle there), and the request id the app receives in X-Request-Id and writes in its own log.
LOG_FORMAT = ('"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %ID '
              '\\"%HM %HPO %HV\\""')


def config(port: int, hosts: dict[str, int], stats_socket: Path, check_host: str = "127.0.0.1") -> str:
    """haproxy.cfg for `hosts` (name → loopback port) behind 127.0.0.1:`port`, its log on stdout."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{host_port}" for name, host_port in hosts.items())
    return f"""\
global
    log stdout format raw local0
    stats socket {stats_socket} mode 600 level admin
    nbthread 1

defaults
    mode http
    log global
    option http-buffer-request
    option forwardfor
    timeout http-request 10s
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 5s

frontend verify
    bind 127.0.0.1:{port}
    http-request del-header X-Forwarded-Host
    http-request del-header X-Request-Id
    http-request set-header X-Forwarded-Proto http
    unique-id-format %{{+X}}o%ci-%cp-%Ts-%rt-%pid
    unique-id-header X-Request-Id
    log-format {LOG_FORMAT}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host {check_host}
    http-check expect status 200
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
    http-request disable-l7-retry unless METH_GET
    default-server check inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2
{servers}
"""


@dataclass(frozen=True)
class HostState:
    """One line of `show stat`: `status` is UP or DOWN (or "UP 1/2" on the way), `check` how the last check went."""

    status: str
    check: str  # L7OK (answered as expected), L7STS (another status), L4CON (connection refused), …
    check_code: str  # the HTTP status of the last check, when it got one


@dataclass
class LoadBalancer:
    """HAProxy in the foreground; its config, log (stdout: its access log) and stats socket in `directory`."""

    hosts: dict[str, int]
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_socket(self) -> Path:
        return self.directory / "haproxy.sock"

    @property
    def log_path(self) -> Path:
        return self.directory / "haproxy.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0) -> LoadBalancer:
        if not HAPROXY.exists():
            raise RuntimeError("HAProxy is missing: `make test` installs Debian's haproxy package")
        path = self.directory / "haproxy.cfg"
        path.write_text(config(self.port, self.hosts, self.stats_socket))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(HAPROXY), "-db", "-f", str(path)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited early:\n{self.log()[-3000:]}")
            try:
                self.states()
                requests.get(self.url, timeout=1)  # any answer: the frontend listens
                return self
            except (OSError, requests.RequestException) as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"haproxy did not listen in {timeout}s:\n{self.log()[-3000:]}") from error
                time.sleep(0.05)

    def states(self) -> dict[str, HostState]:
        """What HAProxy thinks of each host now, from its stats socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        rows = csv.DictReader(io.StringIO(received.decode().removeprefix("# ")))
        return {row["svname"]: HostState(row["status"], row["check_status"].lstrip("* "), row["check_code"])
                for row in rows if row.get("pxname") == BACKEND and row["svname"] in self.hosts}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
