"""Waiting for something to happen, not for time to pass.

A test waits until a condition holds and then asserts on what happened; the
deadline is generous because it only bounds a failure, it is not the claim.
How fast things happen is measured in bench/, not asserted here.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable

PATIENCE = 30.0  # seconds: long enough for a loaded 2-core machine, short enough to end a broken run


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE, every: float = 0.05) -> None:
    """Return as soon as `condition()` is true; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:g}s")
        time.sleep(every)


def finish_within(action: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Run `action` (a shutdown, say) and fail, naming what every other thread was doing, if it has not
    returned within `timeout`.

    A stop that hangs would otherwise end its test only at pytest-timeout's limit, with no word of what
    it waited for; this fails sooner, and the stacks in its message say which thread held it.
    """
    done = threading.Event()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # re-raised in the test's thread
            raised.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"finishing: {what}", daemon=True).start()
    if not done.wait(timeout):
        raise AssertionError(f"{what}: not finished within {timeout:g}s. What each thread was doing:\n"
                             + thread_stacks())
    if raised:
        raise raised[0]


def thread_stacks(innermost: int = 8) -> str:
    """Every thread's innermost frames but this one's, for a failure's message."""
    frames = sys._current_frames()
    described = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        if frame is None or thread is threading.current_thread():
            continue
        stack = "".join(traceback.format_stack(frame)[-innermost:])
        described.append(f"--- {thread.name}\n{stack}")
    return "\n".join(described)
