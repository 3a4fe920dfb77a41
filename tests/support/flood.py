"""A flood of unsigned webhook posts while PASSID's signed deliveries and customers' token checks go on.

Shared by tests/serving/test_flood.py (which asserts) and bench/flood.py (which prints): forty
threads post `{}` without a signature to `/webhooks/passid` as fast as they can, from the same
address as everything else, while a few threads deliver validly signed events and post customer
token checks at a steady pace. What matters is whether the legitimate calls got their real answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import requests

from app.passid import sign_payload

FLOOD_THREADS = 40
# A token check the widget answers 422 ("not a token") after reading the form, without calling
# PASSID: a real body slot's worth of work, and an answer that says the form was read.
TOKEN_CHECK = {"token": "not a token", "n": "x" * 20}
CHECK_ANSWER = 422
SIGNED_ANSWER = 200
PACE_SECONDS = 0.05  # each legitimate thread's pause between calls


@dataclass
class FloodOutcome:
    """Statuses by kind of call; 0 stands for a call that got no answer at all."""

    signed: Counter[int] = field(default_factory=Counter)
    checks: Counter[int] = field(default_factory=Counter)
    flood: Counter[int] = field(default_factory=Counter)

    @property
    def legitimate(self) -> int:
        return sum(self.signed.values()) + sum(self.checks.values())

    @property
    def answered(self) -> int:
        """Legitimate calls that got the answer they came for (a 503 or no answer is not one)."""
        return self.signed[SIGNED_ANSWER] + self.checks[CHECK_ANSWER]

    def answered_percent(self) -> float:
        return 100.0 * self.answered / self.legitimate if self.legitimate else 0.0


def signed_delivery(secret: str) -> tuple[bytes, dict[str, str]]:
    """A distinct `verification.completed` event as PASSID delivers it: body and headers."""
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({
        "id": event_id, "type": "verification.completed", "createdAt": "2026-11-25T22:18:00Z",
        "apiVersion": 1, "livemode": False,
        "data": {"token": "KE8V-3TXY-Z72L", "claims": {"fsi_score": 812, "tier": "A"},
                 "permissions": ["full_score"], "proofType": "passid.share.v1",
                 "verifiedAt": "2026-11-25T22:18:00Z", "corridor": "KE→GB", "recommendation": "approve"},
    }).encode()
    headers = {"Content-Type": "application/json", "X-PASSID-Signature": sign_payload(body, secret),
               "X-PASSID-Event-Id": event_id, "X-PASSID-Event-Type": "verification.completed",
               "X-PASSID-Delivery-Attempt": "1"}
    return body, headers


def status_of(call: Callable[[], requests.Response]) -> int:
    try:
        return call().status_code
    except requests.RequestException:
        return 0


def flood_while_serving(base_url: str, secret: str, seconds: float, *, flood_threads: int = FLOOD_THREADS,
                        signed_threads: int = 2, check_threads: int = 2) -> FloodOutcome:
    """Run the flood for `seconds`; the legitimate threads start once it is under way and stop with it."""
    outcome = FloodOutcome()
    lock = threading.Lock()
    stop = threading.Event()
    webhook_url = f"{base_url}/webhooks/passid"

    def flooder() -> None:
        http = requests.Session()
        while not stop.is_set():
            status = status_of(lambda: http.post(webhook_url, data=b"{}", timeout=10,
                                                 headers={"Content-Type": "application/json"}))
            with lock:
                outcome.flood[status] += 1

    def deliverer() -> None:
        http = requests.Session()
        while not stop.wait(PACE_SECONDS):
            body, headers = signed_delivery(secret)
            status = status_of(partial(http.post, webhook_url, data=body, headers=headers, timeout=10))
            with lock:
                outcome.signed[status] += 1

    def checker() -> None:
        http = requests.Session()
        while not stop.wait(PACE_SECONDS):
            status = status_of(lambda: http.post(f"{base_url}/verify/token/check", data=TOKEN_CHECK, timeout=10))
            with lock:
                outcome.checks[status] += 1

    floods = [threading.Thread(target=flooder) for _ in range(flood_threads)]
    for thread in floods:
        thread.start()
    time.sleep(min(0.5, seconds / 4))  # the flood first, so the legitimate calls meet it in full
    legitimate = [threading.Thread(target=deliverer) for _ in range(signed_threads)]
    legitimate += [threading.Thread(target=checker) for _ in range(check_threads)]
    for thread in legitimate:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in floods + legitimate:
        thread.join(timeout=15)
    return outcome
