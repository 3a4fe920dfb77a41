"""Waiting for something to happen, not for time to pass.

A test waits until a condition holds and then asserts on what happened; the
deadline is generous because it only bounds a failure, it is not the claim.
How fast things happen is measured in bench/, not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PATIENCE = 30.0  # seconds: long enough for a loaded 2-core machine, short enough to end a broken run


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE, every: float = 0.05) -> None:
    """Return as soon as `condition()` is true; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:g}s")
        time.sleep(every)
