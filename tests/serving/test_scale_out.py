"""Several app hosts behind one address: docs/operating.md's recipe run on loopback, one host killed under load.

HAProxy from Debian (tests/support/haproxy.py: the recipe's configuration with loopback ports and
quicker checks) sends the traffic of one address to two app hosts, processes of their own with their
own ports and instance folders, sharing one PostgreSQL database and counting rate limits in Redis.
PASSID is the sandbox on its own (a process apart: killing a host leaves PASSID and its pending
request alone), delivering its webhooks to the balancer's address; the bank's backend is a receiver
of the app's notifications.

- A customer's widget polls through the balancer while a host is killed (SIGKILL) and started again:
  `/readyz` takes the host out and lets it back, no poll sees an error, and the widget reaches success.
- Rate limits hold across hosts: the checks alternate between them and one limit refuses them.
- PASSID's webhooks and the app's notifications are handled once each, whichever host receives them.

What each host did is read from its own `/metrics`, as Prometheus scrapes it. The module starts PASSID
and both hosts once (and the killed host again): every server start costs more than the rest together.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from app.passid import DeliveryStatus, PassidClient, WebhookDelivery
from tests.support.haproxy import LoadBalancer
from tests.support.redis_server import REDIS_URL, redis_or_skip
from tests.support.scraping import BEARER, METRICS_TOKEN, value
from tests.support.servers import (
    AppServer,
    SandboxServer,
    WebhookReceiver,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    migrate,
    postgres_available,
)
from tests.support.waiting import PATIENCE, wait_until
from tests.support.widget_http import HTMX, QrSession, open_qr_session, poll, widget_fields

HOSTS = ("host-1", "host-2")
SECRET = "whsec_scale_out_0123456789"
NOTIFY_SECRET = "notify_secret_scale_out_0123"
LIMIT = 3  # token checks per client address, across every host
PHONE_PROFILE = "NG4M-XQRS-T88W"  # tier B, all clear: approve
POLL = "/verify/qr/status"
TOKEN_CHECK = "/verify/token/check"


@dataclass
class Cluster:
    balancer: LoadBalancer
    hosts: dict[str, AppServer]  # a restarted host replaces its killed predecessor here
    passid: SandboxServer
    institution: PassidClient
    institution_id: str
    database: Engine  # what the hosts share
    notified: WebhookReceiver  # the bank's backend
    redis: Any

    def figures(self, host: str) -> str:
        """The host's own `/metrics`, scraped at its own address as docs/operating.md says."""
        answer = requests.get(f"{self.hosts[host].url}/metrics", headers=BEARER, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.text

    def count(self, host: str, name: str, **labels: str) -> float:
        return value(self.figures(host), name, labels)

    def in_rotation(self, *hosts: str) -> None:
        """Wait until HAProxy's checks of `/readyz` have passed for each of `hosts`."""
        def up() -> bool:
            states = self.balancer.states()
            return all(states[host].status == "UP" for host in hosts)

        wait_until(up, f"HAProxy to count {', '.join(hosts)} in", every=0.1)

    def share_tokens(self, count: int) -> list[str]:
        """One-time tokens for the bank, as the customer's PASSID app makes them."""
        phone = PassidClient(self.passid.url)
        jwt = phone.sandbox_login(PHONE_PROFILE)
        return [phone.create_share_token(jwt, self.institution_id).token for _ in range(count)]



def host_env(database: str, directory: Path, host: str, passid: SandboxServer, api_key: str, balancer: LoadBalancer,
             notified: WebhookReceiver) -> dict[str, str]:
    """A host as the recipe configures one: its own instance folder, everything else the same on every host."""
    return base_env(
        database,
        PASSID_INSTANCE_DIR=str(directory / f"{host}-instance"),
        PASSID_BASE_URL=passid.url, PASSID_API_KEY=api_key, PASSID_WEBHOOK_SECRET=SECRET,
        PASSID_PUBLIC_URL=balancer.url, PASSID_TRUSTED_PROXIES="1",
        PASSID_RATE_LIMIT_STORAGE=REDIS_URL, PASSID_RATE_LIMIT_TOKENS=f"{LIMIT} per hour",
        PASSID_NOTIFY_URL=notified.url, PASSID_NOTIFY_SECRET=NOTIFY_SECRET, PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS="true",
        PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5",
        # A token verify's webhook waits this long for the widget's own record (30 s in production).
        PASSID_WEBHOOK_GRACE_SECONDS="1",
        PASSID_METRICS_TOKEN=METRICS_TOKEN,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if not postgres_available():  # raises instead where PostgreSQL may not be missing (tests/support/postgres.py)
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    migrated_postgres = request.getfixturevalue("migrated_postgres")
    shared_redis = redis_or_skip()
    shared_redis.flushdb()  # a window left by an earlier run would count against this one
    directory = tmp_path_factory.mktemp("scale-out")
    with ExitStack() as stack:  # stops and drops everything, last made first, however the tests end
        stack.callback(shared_redis.close)
        stack.callback(shared_redis.flushdb)
        passid_env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5")
        migrate(passid_env)  # PASSID's own database: a copy of a migrated file, no PostgreSQL database to make and drop
        passid = SandboxServer(passid_env, directory / "passid.log")
        stack.callback(passid.stop)
        passid.start()
        onboarding = PassidClient(passid.url).onboard("Scale-out Bank")
        institution = PassidClient(passid.url, onboarding.sandbox_key)
        balancer = LoadBalancer({host: free_port() for host in HOSTS}, directory)
        notified = stack.enter_context(WebhookReceiver())
        database, url = create_postgres_database(template=migrated_postgres)
        stack.callback(drop_postgres_database, database)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        hosts = {host: AppServer(host_env(url, directory, host, passid, onboarding.sandbox_key, balancer, notified),
                                 directory / f"{host}.log", port=port) for host, port in balancer.hosts.items()}
        for host in HOSTS:
            stack.callback(lambda host=host: hosts[host].stop())  # whichever process is the host's by then
        institution.set_webhook(f"{balancer.url}/webhooks/passid", SECRET)  # PASSID knows one address
        with ThreadPoolExecutor(max_workers=2) as starting:  # side by side: each start is mostly waiting
            list(starting.map(AppServer.start, hosts.values()))
        stack.callback(balancer.stop)
        balancer.start()
        yield Cluster(balancer, hosts, passid, institution, onboarding.institution_id, engine, notified, shared_redis)


def test_a_widget_polling_through_the_balancer_reaches_success_while_a_host_is_killed_and_restarted(
    cluster: Cluster,
) -> None:
    cluster.in_rotation(*HOSTS)
    # HAProxy's checks are `GET /readyz`, answered 200 by each host.
    assert {(s.check, s.check_code) for s in cluster.balancer.states().values()} == {("L7OK", "200")}
    session = open_qr_session(cluster.balancer.url)
    poller = Poller(session)
    poller.start()
    try:
        poller.wait_for(1, "a first poll")
        wait_until(lambda: all(polls_answered(cluster, host) for host in HOSTS), "polls answered by both hosts")
        killed = cluster.hosts["host-1"]
        killed.kill()
        wait_until(lambda: cluster.balancer.states()["host-1"].status == "DOWN", "the killed host taken out")
        assert cluster.balancer.states()["host-1"].check == "L4CON"  # its /readyz no longer answers
        poller.wait_for(len(poller.answers) + 3, "polls answered while a host is down")
        cluster.hosts["host-1"] = AppServer(killed.env, killed.log_path, port=killed.port).start()
        cluster.in_rotation("host-1")
        wait_until(lambda: polls_answered(cluster, "host-1"), "a poll answered by the restarted host")
        phone = PassidClient(cluster.passid.url)
        phone.fulfill_request(session.request_id, phone.sandbox_login("KE8V-3TXY-Z72L"))
        poller.join(timeout=PATIENCE)
    finally:
        poller.stopped.set()
        poller.join(timeout=10)
    *pending, final = poller.answers
    assert [a if isinstance(a, str) else a.status_code for a in pending] == [204] * len(pending), "a poll failed"
    assert isinstance(final, requests.Response) and final.status_code == 200, final
    assert 'data-view="success"' in final.text and ">812<" in final.text
    # One id finds the request in the balancer's log and ours; the balancer's log, too, keeps the handle out.
    assert balancers_id(final)
    wait_until(lambda: final.headers["X-Request-Id"] in cluster.balancer.log(), "the last poll in HAProxy's log")
    assert f'{final.headers["X-Request-Id"]} "GET {POLL} HTTP/1.1"' in cluster.balancer.log()
    assert parse_qs(urlsplit(session.poll_url).query)["h"][0] not in cluster.balancer.log()
    poll_path = session.poll_url.removeprefix(cluster.balancer.url)
    for host in cluster.hosts.values():  # each host shows the same result, from the shared database
        again = requests.get(host.url + poll_path, headers=HTMX, timeout=10)
        assert 'data-view="success"' in again.text and ">812<" in again.text


class Poller(threading.Thread):
    """The widget's poll, quicker than its 2.5 s, until an answer is not "still pending" (or it is stopped)."""

    def __init__(self, session: QrSession) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.answers: list[requests.Response | str] = []  # a poll that failed outright, as a sentence
        self.stopped = threading.Event()

    def wait_for(self, count: int, what: str) -> None:
        """Until `count` answers came, or the poller stopped (the assertions on `answers` then say why)."""
        wait_until(lambda: len(self.answers) >= count or not self.is_alive(), what)
        assert len(self.answers) >= count, f"{what}: the poller stopped after {self.answers[-1:]}"

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                answer = poll(self.session)
            except requests.RequestException as error:
                self.answers.append(f"{type(error).__name__}: {error}")
                return
            self.answers.append(answer)
            if answer.status_code != 204:
                return
            self.stopped.wait(0.1)


def polls_answered(cluster: Cluster, host: str) -> float:
    """Polls this host's current process answered."""
    return cluster.count(host, "passid_http_requests_total", route=POLL)


def test_rate_limits_hold_across_hosts(cluster: Cluster) -> None:
    cluster.in_rotation(*HOSTS)
    tokens = cluster.share_tokens(2 * LIMIT)
    checks_before = {host: cluster.count(host, "passid_http_requests_total", route=TOKEN_CHECK) for host in HOSTS}
    verifies_before = sum(cluster.count(host, "passid_upstream_calls_total", endpoint="verify") for host in HOSTS)
    # Every page first, then the checks one after another: round robin sends them to each host in turn.
    forms = [widget_fields(cluster.balancer.url) for _ in tokens]
    # Past the limit, each check claims another client address, host and request id: the balancer drops or
    # overwrites what a client says of itself, so the app still counts the balancer's word for the address.
    answers = [requests.post(f"{cluster.balancer.url}{TOKEN_CHECK}", data={**form, "token": token},
                             headers=spoofed(number) if number >= LIMIT else {}, timeout=15)
               for number, (form, token) in enumerate(zip(forms, tokens, strict=True))]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * LIMIT
    assert all('data-view="success"' in a.text for a in answers[:LIMIT])
    assert all(a.headers.get("Retry-After") and balancers_id(a) for a in answers[LIMIT:])
    checks = {host: cluster.count(host, "passid_http_requests_total", route=TOKEN_CHECK) - checks_before[host]
              for host in HOSTS}
    # Both hosts answered some: counting apart, each would have let up to LIMIT of its own through.
    assert sum(checks.values()) == 2 * LIMIT and all(checks.values()), checks
    assert sum(cluster.count(host, "passid_rate_limit_refusals_total", route=TOKEN_CHECK) for host in HOSTS) == LIMIT
    verifies = sum(cluster.count(host, "passid_upstream_calls_total", endpoint="verify") for host in HOSTS)
    assert verifies - verifies_before == LIMIT  # a refused check costs no call to PASSID
    # The windows are in Redis, not in the database the hosts share (whose counters would hold across hosts too).
    assert cluster.redis.dbsize() > 0
    with cluster.database.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_limit_counter")).scalar() == 0


def spoofed(number: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{number}", "X-Forwarded-Host": "elsewhere.example",
            "X-Request-Id": f"chosen-by-the-client-{number}"}


def balancers_id(answer: requests.Response) -> bool:
    """Whether the answer carries HAProxy's request id (`unique-id-format`: the client's address in hex first)."""
    return re.fullmatch(r"7F000001(-[0-9A-F]+){4}", answer.headers["X-Request-Id"]) is not None


def test_webhooks_and_notifications_are_handled_once_whichever_host_receives_them(cluster: Cluster) -> None:
    cluster.in_rotation(*HOSTS)
    delivered_before = settled_deliveries(cluster)
    accepted_before = {host: webhooks_accepted(cluster, host) for host in HOSTS}
    # The bank's backend verifies two tokens at PASSID itself; their webhooks are then the only requests
    # through the balancer, so round robin hands one to each host.
    for token in cluster.share_tokens(2):
        assert cluster.institution.verify(token).verified
    wait_until(lambda: len(settled_deliveries(cluster)) == len(delivered_before) + 2, "PASSID's two deliveries")
    assert {host: webhooks_accepted(cluster, host) - accepted_before[host] for host in HOSTS} == dict.fromkeys(HOSTS, 1)

    # Whatever the module did (a QR verification, token checks, these two): each event stored, handled and
    # recorded once, and the bank told once of each verification.
    deliveries = settled_deliveries(cluster)
    assert {d.type for d in deliveries} == {"verification.completed"}
    assert all((d.status, d.attempts) == (DeliveryStatus.DELIVERED, 1) for d in deliveries), deliveries

    def receipts() -> list[Any]:
        with cluster.database.connect() as conn:
            return list(conn.execute(text(
                "SELECT event_id, handling_status, handling_attempts FROM webhook_receipt "
                "WHERE signature_result = 'valid' AND event_type = 'verification.completed'")))

    wait_until(lambda: len(receipts()) == len(deliveries) and all(r[1] == "handled" for r in receipts()),
               "every webhook handled")
    assert sorted(r[0] for r in receipts()) == sorted(d.event_id for d in deliveries)
    assert {r[2] for r in receipts()} == {1}  # claimed once: no host handled an event another had
    with cluster.database.connect() as conn:
        recorded = list(conn.execute(text("SELECT id, request_id, token_hash FROM verification")))
    assert len(recorded) == len(deliveries)
    assert len({(r[1], r[2]) for r in recorded}) == len(recorded)  # one row per request or token

    def notifications() -> list[Any]:
        with cluster.database.connect() as conn:
            return list(conn.execute(text("SELECT event_id, status, attempts FROM notification_delivery")))

    wait_until(lambda: len(notifications()) == len(recorded) and all(n[1] != "pending" for n in notifications()),
               "a notification sent for every verification")
    assert {(n[1], n[2]) for n in notifications()} == {("delivered", 1)}
    sent = [r.json() for r in cluster.notified.received]
    assert Counter(event["id"] for event in sent) == dict.fromkeys((n[0] for n in notifications()), 1)
    assert {event["type"] for event in sent} == {"verification.recorded"}
    assert sorted(event["data"]["resultId"] for event in sent) == sorted(r[0] for r in recorded)


def webhooks_accepted(cluster: Cluster, host: str) -> float:
    return cluster.count(host, "passid_webhook_receipts_total", result="accepted")


def settled_deliveries(cluster: Cluster) -> list[WebhookDelivery]:
    """PASSID's deliveries of webhooks, once none is waiting for an attempt."""
    found: list[WebhookDelivery] = []

    def settled() -> bool:
        found[:] = cluster.institution.list_webhook_deliveries()
        return all(d.status is not DeliveryStatus.PENDING for d in found)

    wait_until(settled, "PASSID's deliveries settled", every=0.1)
    return found
