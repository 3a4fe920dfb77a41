"""`PASSID_LOG_FORMAT=json`: every log line the app writes as one JSON object, for a log shipper to read.

Access lines and the app's own records alike go to stderr through one handler on the root logger, with
the time (UTC, ISO 8601), level, logger, message, process id and the request id (app/plumbing/request_ids.py)
of the request that wrote them; an access line adds its fields (`method`, `path`, `route`, `status`,
`bytes`, `duration_ms`, `client`). What a line says is exactly what the text format says: the path
without its query string, an id in it masked (app/plumbing/access_log.py), and never a token, claim or
handle, which no log call of the app passes.

`text` (the default) leaves logging as it was: access lines on stderr as text, and whatever the server
or the embedding code configured for the rest. Granian's own lines (start, stop, workers) are its own,
on stdout, and stay text.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from app.plumbing import request_ids
from app.plumbing.access_log import ACCESS_LOGGER


class WithRequestId(logging.Filter):
    """Adds the id of the request being served (None in a background pass) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_ids.current()
        return True


class JsonLines(logging.StreamHandler):
    """The one handler JSON logs are written by (found again by its class, never installed twice)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter(
            ["levelname", "name", "message", "process"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        ))
        self.addFilter(WithRequestId())


def init_logging(log_format: str) -> None:
    """Write every log line as JSON when `log_format` is "json"; leave logging alone for "text"."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not any(isinstance(handler, JsonLines) for handler in root.handlers):
        root.addHandler(JsonLines())
    access = logging.getLogger(ACCESS_LOGGER)
    if access.level == logging.NOTSET:
        access.setLevel(logging.INFO)
    for handler in list(access.handlers):  # the text handler `access_logger()` may have added
        access.removeHandler(handler)
    access.propagate = True


def stop_json_logs() -> None:
    """Remove the JSON handler (for tests that turned it on in their own process)."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, JsonLines)]:
        root.removeHandler(handler)
