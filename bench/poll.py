"""Cost of the widget's status poll: through our server vs straight from PASSID, side by side.

The kinds of request, interleaved in one loop (shuffled order each round,
so machine load drifts over all alike), each timed on its own keep-alive
connection:

  straight        GET <PASSID>/api/bridge/request/<id> with the institution key (a pending request)
  between checks  GET /verify/qr/status?h=…&o=… for that same pending request (204), answered
                  from our records: with webhooks on, two polls in three at the widget's 2.5 s
                  cadence (PASSID_POLL_CHECK_SECONDS=7.5: one check window per three polls)
  at a check      the same poll on a second app process on the same database with
                  PASSID_POLL_CHECK_SECONDS=0, so every poll asks PASSID: one poll in three
  at cadence      the figure a widget sees: the two above mixed two to one
  after webhook   the poll for a request PASSID completed and whose webhook we already
                  handled: answered from our records, no PASSID call
  /healthz        our app's floor: Granian, Flask and one `SELECT 1`, for scale

PASSID is the sandbox in its own Granian; our app reaches it over loopback
as production reaches PASSID over the network. At the end PASSID is stopped
and the after-webhook poll is asked once more: it still answers success,
which shows it never needed PASSID.

Run: `make bench` (or `.venv/bin/python -m bench.poll [--rounds 300]`).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import requests

from bench.support import (
    HTMX,
    BenchServer,
    machine_note,
    ms,
    open_qr_session,
    passid_and_app,
    percentile,
    print_table,
    widget_options,
)
from tests.support.widget_http import wait_recorded

WARM_UP = 20
BETWEEN = "ours, pending, between checks"
AT_CHECK = "ours, pending, at a check"
AT_CADENCE = "ours, pending, at 2.5 s cadence"
AFTER = "ours, after webhook"


def measure(rounds: int) -> tuple[dict[str, list[float]], str]:
    with tempfile.TemporaryDirectory() as tmp, passid_and_app(Path(tmp)) as wiring:
        browser = requests.Session()
        options = widget_options(browser, wiring.app.url)
        pending = open_qr_session(browser, wiring.app.url, options)
        completed = open_qr_session(browser, wiring.app.url, options)
        assert browser.get(completed.poll_url, headers=HTMX, timeout=10).status_code == 204
        wiring.passid_client(with_key=False).fulfill_request(completed.request_id, wiring.phone_login())
        # No poll of `completed` until the webhook's handling has recorded it.
        wait_recorded(wiring.app_database, completed.request_id)

        straight_url = f"{wiring.passid.sandbox_url}/api/bridge/request/{pending.request_id}"
        key = {"X-Institution-Key": wiring.api_key, "Accept": "application/json"}
        asking = BenchServer({**wiring.app.env, "PASSID_POLL_CHECK_SECONDS": "0"}, Path(tmp) / "asking.log").start()
        try:
            calls = {
                "straight from PASSID": (requests.Session(), straight_url, key, 200),
                BETWEEN: (requests.Session(), pending.poll_url, HTMX, 204),
                AT_CHECK: (requests.Session(), pending.poll_url.replace(wiring.app.url, asking.url), HTMX, 204),
                AFTER: (requests.Session(), completed.poll_url, HTMX, 200),
                "our /healthz (floor)": (requests.Session(), f"{wiring.app.url}/healthz", {}, 200),
            }
            timings: dict[str, list[float]] = {name: [] for name in calls}
            order = list(calls)
            shuffle = random.Random(7).shuffle
            for round_number in range(WARM_UP + rounds):
                shuffle(order)
                for name in order:
                    session, url, headers, expected = calls[name]
                    started = time.perf_counter()
                    answer = session.get(url, headers=headers, timeout=10)
                    elapsed = time.perf_counter() - started
                    if answer.status_code != expected:
                        raise RuntimeError(f"{name}: {answer.status_code} (expected {expected}): {answer.text[:300]}")
                    if round_number >= WARM_UP:
                        timings[name].append(elapsed)
        finally:
            asking.stop()
        wiring.passid.stop()  # from here on any PASSID call would fail
        finished = requests.get(completed.poll_url, headers=HTMX, timeout=10)
        proof = ("after-webhook poll answered success with PASSID stopped: no PASSID call"
                 if finished.status_code == 200 and 'data-view="success"' in finished.text
                 else f"after-webhook poll with PASSID stopped answered {finished.status_code}: it needed PASSID")
        return timings, proof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="requests of each kind (default 300)")
    args = parser.parse_args()
    note = machine_note()
    timings, proof = measure(args.rounds)
    # At the widget's cadence two polls in three fall between checks: mix the samples two to one.
    timings[AT_CADENCE] = timings[BETWEEN] + timings[AT_CHECK][::2]
    straight = timings["straight from PASSID"]
    rows = [
        [name, len(samples), ms(percentile(samples, 50)), ms(percentile(samples, 99))]
        for name, samples in timings.items()
    ]
    print_table(
        f"Status poll latency, {args.rounds} sequential requests of each kind, interleaved (ms; {note})",
        ["what", "n", "p50", "p99"], rows,
    )
    ratios = []
    for name, target in ((AT_CADENCE, 1.2), (BETWEEN, 1.2), (AT_CHECK, 1.2), (AFTER, 0.5)):
        p50 = percentile(timings[name], 50) / percentile(straight, 50)
        p99 = percentile(timings[name], 99) / percentile(straight, 99)
        ratios.append([f"{name} ÷ straight", f"{p50:.2f}", f"{p99:.2f}", f"≤ {target}",
                       "ok" if p50 <= target else "OVER"])
    print_table("Ratios", ["what", "p50", "p99", "target", "p50 vs target"], ratios)
    floor = percentile(timings["our /healthz (floor)"], 50) / percentile(straight, 50)
    print(f"our own floor (/healthz, no PASSID call, no template) ÷ straight, p50: {floor:.2f}")
    added = percentile(timings[AT_CHECK], 50) - percentile(straight, 50)
    print(f"latency our server adds to a poll that asks PASSID (p50 difference): {ms(added)} ms")
    print("PASSID here is the sandbox on loopback (a few ms); against a PASSID tens of ms away over the")
    print("network the same added milliseconds make a smaller ratio.")
    print(proof)


if __name__ == "__main__":
    main()
