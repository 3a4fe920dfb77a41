"""The app's JSON log lines (`PASSID_LOG_FORMAT=json`), captured in the test's own process.

The app's JSON handler writes to stderr; here it writes to a buffer the test reads, at INFO for every
logger (the access log's level, and the app's own INFO lines too), and both go back as they were after.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.plumbing.log_format import JsonLines, stop_json_logs


class CapturedLogs:
    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, each parsed as the one JSON object it must be."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@contextmanager
def json_logs_captured() -> Iterator[CapturedLogs]:
    """Call after building an app with PASSID_LOG_FORMAT=json (which installs the handler)."""
    root = logging.getLogger()
    [handler] = [handler for handler in root.handlers if isinstance(handler, JsonLines)]
    buffer = io.StringIO()
    handler.setStream(buffer)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield CapturedLogs(buffer)
    finally:
        root.setLevel(level)
        stop_json_logs()
