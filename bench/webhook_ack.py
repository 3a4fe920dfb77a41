"""The webhook receiver: acknowledgement latency and events per second, signature checks on.

Our app runs under gunicorn with PASSID_WEBHOOK_SECRET set; a few client
threads post distinct `verification.completed` events, each signed over its
exact bytes with `app.passid.sign_payload`, as PASSID delivers them. Every
acknowledgement is timed; the background handling of stored events runs
meanwhile, as it does in production. SQLite always, PostgreSQL when one
answers at TEST_POSTGRES_URL (default postgres@127.0.0.1:5432).

Run: `make bench` (or `.venv/bin/python -m bench.webhook_ack [--events 2000 --threads 4]`).
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


def deliver_all(url: str, events: list[tuple[str, bytes, str]], threads: int) -> tuple[list[float], list[str], float]:
    timings: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    queue = iter(events)

    def sender() -> None:
        http = requests.Session()
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            event_id, body, signature = item
            headers = {"Content-Type": "application/json", "X-PASSID-Signature": signature,
                       "X-PASSID-Event-Id": event_id, "X-PASSID-Event-Type": "verification.completed",
                       "X-PASSID-Delivery-Attempt": "1"}
            started = time.perf_counter()
            try:
                answer = http.post(url, data=body, headers=headers, timeout=10)
                status = answer.status_code
            except requests.RequestException as error:
                status, answer = 0, None
                detail = str(error)
            elapsed = time.perf_counter() - started
            with lock:
                if status == 200:
                    timings.append(elapsed)
                else:
                    failures.append(f"{status} {answer.text[:120] if answer is not None else detail}")

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return timings, failures, time.perf_counter() - started


def run(label: str, database_url: str, tmp: Path, events: int, threads: int, workers: int) -> list[object]:
    env = base_env(database_url, PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, **PRODUCTION_LIKE)
    migrate(env)
    server = BenchServer(env, tmp / f"{label}.log", workers=workers).start()
    try:
        url = f"{server.url}/webhooks/passid"
        deliver_all(url, [signed_event() for _ in range(50)], threads)  # warm-up
        batch = [signed_event() for _ in range(events)]
        timings, failures, wall = deliver_all(url, batch, threads)
    finally:
        server.stop()
    for failure in failures[:5]:
        print(f"FAILED ({label}) {failure}")
    shape = f"{workers} worker{'s' if workers > 1 else ''} × 8 threads"
    return [f"{label} ({shape})", len(timings), len(failures), ms(percentile(timings, 50)),
            ms(percentile(timings, 99)), f"{len(timings) / wall:.0f}", "p99 < 20"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per database (default 2000)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent senders (default 4)")
    args = parser.parse_args()
    note = machine_note()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(run("SQLite", f"sqlite:///{tmp}/receiver.db", Path(tmp), args.events, args.threads, 1))
        if postgres_available():
            name, url = create_postgres_database()
            try:
                rows.append(run("PostgreSQL", url, Path(tmp), args.events, args.threads, 2))
            finally:
                drop_postgres_database(name)
        else:
            print("(PostgreSQL not reachable: its row is skipped)")
    print_table(
        f"Webhook acknowledgement, {args.events} signed events from {args.threads} threads, signature checks on "
        f"(ms; {note})",
        ["receiver", "acked", "failed", "p50", "p99", "events/s", "target"], rows,
    )


if __name__ == "__main__":
    main()
