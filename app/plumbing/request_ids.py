"""A request id for every request: in the `X-Request-Id` answer header, on every log line the request
writes (JSON logs), and on every call to PASSID it makes, so one id follows a request through our logs,
the load balancer's and PASSID's.

The outermost layer (app/plumbing/access_log.py) chooses it as the request arrives: the one a trusted
proxy sent (`PASSID_TRUSTED_PROXIES`; HAProxy's `unique-id-header`, say) when it is well-formed, else
a new random one. A client's own header is not believed without a proxy: it would put what any
stranger writes into our logs. The id says nothing about the request or the person: random hex, or the
proxy's own.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

HEADER = "X-Request-Id"
ENVIRON_KEY = "passid.request_id"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

# The id of the request this thread is serving, for log lines and PASSID calls made on the way.
_current: ContextVar[str | None] = ContextVar("passid_request_id", default=None)


def choose(environ: dict[str, Any], *, trust_header: bool) -> str:
    """The request's id: a trusted proxy's well-formed `X-Request-Id`, else a new one."""
    offered = environ.get("HTTP_X_REQUEST_ID", "") if trust_header else ""
    return offered if _WELL_FORMED.match(offered) else uuid.uuid4().hex


def begin(request_id: str) -> None:
    _current.set(request_id)


def end() -> None:
    _current.set(None)


def current() -> str | None:
    """The id of the request being served in this thread; None in a background pass or a CLI command."""
    return _current.get()


def outbound_headers() -> dict[str, str]:
    """Headers for a call made on behalf of the current request (none outside one)."""
    request_id = _current.get()
    return {HEADER: request_id} if request_id else {}
