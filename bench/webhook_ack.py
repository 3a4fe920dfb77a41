"""The webhook receiver: acknowledgement latency and events per second, signature checks on.

Our app runs under Granian with PASSID_WEBHOOK_SECRET set; client threads
post distinct `verification.completed` events, first at a steady rate (far
above what any institution's verifications produce; latency there is what
PASSID sees) and then as a flood (the events per second the receiver
sustains), each signed over its
exact bytes with `app.passid.sign_payload`, as PASSID delivers them. Every
acknowledgement is timed; the background handling of stored events runs
meanwhile, as it does in production. SQLite always, PostgreSQL when one
answers at TEST_POSTGRES_URL (default postgres@127.0.0.1:5432).

Run: `make bench` (or `.venv/bin/python -m bench.webhook_ack [--events 2000 --threads 4 --rate 100]`).
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from app.passid import sign_payload
from bench.support import PRODUCTION_LIKE, WEBHOOK_SECRET, BenchServer, machine_note, ms, percentile, print_table
from tests.support.servers import (
    THREADS,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    postgres_available,
)

TOKEN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def signed_event() -> tuple[str, bytes, str]:
    """A distinct verification.completed event as PASSID sends it: id, raw body, signature header."""
    token = "-".join("".join(secrets.choice(TOKEN_ALPHABET) for _ in range(4)) for _ in range(4))
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({
        "id": event_id, "type": "verification.completed", "createdAt": "2026-11-25T22:18:00Z",
        "apiVersion": 1, "livemode": False,
        "data": {"token": token, "claims": {"fsi_score": 812, "tier": "A"}, "permissions": ["full_score"],
                 "proofType": "passid.share.v1", "verifiedAt": "2026-11-25T22:18:00Z", "corridor": "KE→GB",
                 "recommendation": "approve"},
    }).encode()
    return event_id, body, sign_payload(body, WEBHOOK_SECRET)


def post_signed_event(http: requests.Session, url: str, item: tuple[str, bytes, str]) -> tuple[int, str]:
    event_id, body, signature = item
    headers = {"Content-Type": "application/json", "X-PASSID-Signature": signature,
               "X-PASSID-Event-Id": event_id, "X-PASSID-Event-Type": "verification.completed",
               "X-PASSID-Delivery-Attempt": "1"}
    try:
        answer = http.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as error:
        return 0, str(error)
    return answer.status_code, answer.text[:120]


def deliver_all(url: str, events: list[tuple[str, bytes, str]], threads: int,
                rate: float | None = None) -> tuple[list[float], list[str], float]:
    """Send every event from `threads` senders: as fast as they go, or at a steady `rate` per second.

    At a steady rate each event has a due time and its latency counts from
    then, so a receiver that falls behind shows it (no coordinated omission).
    """
    timings: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    queue = iter(enumerate(events))
    started = time.perf_counter()

    def sender() -> None:
        http = requests.Session()
        while True:
            with lock:
                index, item = next(queue, (None, None))
            if item is None:
                return
            if rate:
                due = started + index / rate
                time.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
            status, detail = post_signed_event(http, url, item)
            elapsed = time.perf_counter() - due
            with lock:
                if status == 200:
                    timings.append(elapsed)
                else:
                    failures.append(f"{status} {detail}")

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return timings, failures, time.perf_counter() - started


def count_503(failures: list[str]) -> int:
    return sum(1 for failure in failures if failure.startswith("503 "))


def run(label: str, database_url: str, tmp: Path, args: argparse.Namespace, workers: int) -> list[list[object]]:
    env = base_env(database_url, PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, **PRODUCTION_LIKE)
    migrate(env)
    server = BenchServer(env, tmp / f"{label}.log", workers=workers).start()
    try:
        url = f"{server.url}/webhooks/passid"
        deliver_all(url, [signed_event() for _ in range(50)], args.threads)  # warm-up
        steady = deliver_all(url, [signed_event() for _ in range(args.events)], 8, rate=args.rate)
        flood = deliver_all(url, [signed_event() for _ in range(args.events)], args.threads)
    finally:
        server.stop()
    shape = f"{workers} worker{'s' if workers > 1 else ''} × {THREADS} threads"
    print(f"{label}: 503s at a steady {args.rate:g}/s: {count_503(steady[1])} of {args.events}")
    rows = []
    for load, (timings, failures, wall) in ((f"steady {args.rate:g}/s", steady),
                                           (f"flood, {args.threads} senders", flood)):
        for failure in failures[:5]:
            print(f"FAILED ({label}, {load}) {failure}")
        rows.append([f"{label} ({shape})", load, len(timings), len(failures), count_503(failures),
                     ms(percentile(timings, 50)),
                     ms(percentile(timings, 99)), f"{len(timings) / wall:.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per load and database (default 2000)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent senders in the flood (default 4)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="events per second of the steady load (default 100)")
    args = parser.parse_args()
    note = machine_note()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run("SQLite", f"sqlite:///{tmp}/receiver.db", Path(tmp), args, 1)
        if postgres_available():
            name, url = create_postgres_database()
            try:
                rows += run("PostgreSQL", url, Path(tmp), args, 2)
            finally:
                drop_postgres_database(name)
        else:
            print("(PostgreSQL not reachable: its row is skipped)")
    print_table(
        f"Webhook acknowledgement, {args.events} signed events per load, signature checks on, handling running "
        f"(ms; {note}); target p99 < 20 ms",
        ["receiver", "load", "acked", "failed", "503s", "p50", "p99", "events/s"], rows,
    )
    print("steady: events sent on a fixed schedule, latency from each one's due time; "
          "flood: senders back to back, the most the receiver sustains (its p99 is queueing).")


if __name__ == "__main__":
    main()
