"""The guide's go-live checklist, checked by the app itself where it can be.

`evaluate_checklist` is the decision: plain facts in, one verdict per item
out, no request and no network, so every verdict can be tested with made-up
facts. `gather_facts` is the one place that looks at the running app
(configuration, PASSID's webhook settings, our webhook log, git) and at the
app's own behaviour (the verify call's headers, the expired state as the
widget draws it) to collect those facts; the console page and
`flask passid checklist` both use it.

A verdict is earned: "pass" means the behaviour was seen. An item that no run
time check can see says "by_construction" (shown as "Guaranteed by
construction") with where the guarantee lives, never a bare "pass".
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from flask import current_app
from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from requests.adapters import HTTPAdapter

from app.config import PROJECT_ROOT
from app.plumbing.staff_formatting import console_number, console_time

Verdict = Literal["pass", "fail", "cannot_check", "by_construction"]
VERDICT_LABELS: dict[Verdict, LazyString] = {
    "pass": lazy_gettext("Pass"),
    "fail": lazy_gettext("Fail"),
    "cannot_check": lazy_gettext("Cannot check"),
    "by_construction": lazy_gettext("Guaranteed by construction"),
}
WEBHOOK_PATH = "/webhooks/passid"
# The guide's limit: PASSID counts a delivery not answered within 10 s as failed and retries it.
WEBHOOK_ANSWER_LIMIT_MS = 10_000
NEW_CODE_BUTTON = "Generate new code"
# The parent page the checklist imagines around an embedded widget (never contacted).
EMBEDDING_ORIGIN = "https://checklist.invalid"
# Words a customer must never read after a sanctions deny (lower case).
_TIPPING_OFF_WORDS = ("sanction", "watch-list", "watchlist", "hard_deny")


@dataclass(frozen=True)
class Item:
    title: str
    verdict: Verdict
    detail: str
    how_to_fix: str = ""

    @property
    def label(self) -> str:
        return str(VERDICT_LABELS[self.verdict])


@dataclass(frozen=True)
class Facts:
    """Everything the checklist looks at, as plain values."""

    api_key: str | None
    webhook_secret_set: bool  # ours: PASSID_WEBHOOK_SECRET (or the demo institution's)
    registered_webhook_url: str | None  # PASSID's GET /api/institution/webhook
    passid_secret_set: bool | None  # the same answer's secretSet; None when not asked
    webhook_lookup_error: str | None  # why we could not ask PASSID, if we could not
    test_webhook_verified_at: datetime | None  # newest test event whose signature held
    # How long our receiver took, from that request's start to the event stored; None: not timed.
    test_webhook_answered_ms: int | None
    # A verify through PassidClient.verify, watched on the wire, carried the header (see verify_sends_idempotency_key).
    idempotency_key_sent: bool
    # The expired state, rendered as the widget renders it, has a real "Generate new code" button.
    expiry_offers_new_code: bool
    https: bool | None  # the request was secure, as the app sees it; None: not asked over HTTP (the CLI)
    committed_secret_files: tuple[str, ...] | None  # None: no git to ask
    # X-Forwarded-Proto said https, but PASSID_TRUSTED_PROXIES does not let the app believe it.
    https_claimed_by_untrusted_proxy: bool = False
    sanctions_deny_is_neutral: bool = True


def _key_kind(key: str | None) -> str:
    """Only the prefix is ever shown: the key itself must not reach a page or a log."""
    if not key:
        return _("no key")
    if key.startswith("sk_live_"):
        return _("a live key (sk_live_…)")
    if key.startswith("sk_sandbox_"):
        return _("a sandbox key (sk_sandbox_…)")
    return _("a key of an unknown kind")


def evaluate_checklist(facts: Facts) -> list[Item]:
    return [
        _live_key(facts),
        _secrets_not_committed(facts),
        _webhook_url(facts),
        _webhook_secret(facts),
        _test_webhook(facts),
        _webhook_answer_time(facts),
        _https(facts),
        _idempotency_key(facts),
        _sanctions(facts),
        _expiry(facts),
    ]


def _live_key(facts: Facts) -> Item:
    title = _("Live API key configured")
    kind = _key_kind(facts.api_key)
    if facts.api_key and facts.api_key.startswith("sk_live_"):
        return Item(title, "pass", _("The app uses %(kind)s.", kind=kind))
    sandbox = bool(facts.api_key and facts.api_key.startswith("sk_sandbox_"))
    return Item(
        title,
        "fail",
        _("The app uses %(kind)s from the embedded sandbox.", kind=kind) if sandbox
        else _("The app uses %(kind)s.", kind=kind),
        _("Set PASSID_API_KEY to your sk_live_… key and PASSID_BASE_URL to https://api.passid.io "
          "in the server's environment, and set PASSID_SANDBOX_ENABLED=false."),
    )


def _secrets_not_committed(facts: Facts) -> Item:
    title = _("API key not committed; .env not in version control")
    if facts.committed_secret_files is None:
        return Item(
            title,
            "cannot_check",
            _("This copy of the app is not a git checkout (or git is missing), so it cannot see what is committed."),
            _("Check your repository yourself: .env must be ignored and no file may contain the key."),
        )
    if facts.committed_secret_files:
        return Item(
            title,
            "fail",
            _("Tracked by git: %(files)s", files=", ".join(facts.committed_secret_files)),
            _("Remove these from the repository (git rm --cached), add .env to .gitignore, and rotate the "
              "key in the PASSID dashboard: a committed key must be treated as leaked."),
        )
    return Item(title, "pass", _("No .env file is tracked and no tracked file contains the key in use."))


def _webhook_url(facts: Facts) -> Item:
    title = _("Webhook URL registered with PASSID")
    fix = _("Register https://<your public host>%(path)s in the PASSID dashboard → API & Webhooks.",
            path=WEBHOOK_PATH)
    if facts.webhook_lookup_error:
        return Item(title, "cannot_check", _("Could not ask PASSID: %(error)s", error=facts.webhook_lookup_error),
                    _("Check PASSID_BASE_URL and PASSID_API_KEY, then reload."))
    url = facts.registered_webhook_url
    if not url:
        return Item(title, "fail", _("PASSID has no webhook URL for this institution."), fix)
    parts = urlsplit(url)
    if parts.path.rstrip("/") != WEBHOOK_PATH:
        return Item(title, "fail", _("PASSID sends webhooks to %(url)s, which is not this app's receiver.", url=url),
                    fix)
    if facts.api_key and facts.api_key.startswith("sk_live_") and parts.scheme != "https":
        return Item(title, "fail", _("%(url)s is plain http: live claims would travel unencrypted.", url=url), fix)
    return Item(title, "pass", _("PASSID sends webhooks to %(url)s.", url=url))


def _webhook_secret(facts: Facts) -> Item:
    title = _("Webhook secret set on both sides")
    fix = _("Choose a secret of at least 16 characters, save it in the PASSID dashboard and set the same "
            "value in PASSID_WEBHOOK_SECRET (comma-separate old and new while rotating).")
    if not facts.webhook_secret_set:
        return Item(title, "fail", _("PASSID_WEBHOOK_SECRET is not set, so every webhook fails its signature check."),
                    fix)
    if facts.passid_secret_set is False:
        return Item(title, "fail", _("PASSID has no webhook secret for this institution, so it cannot sign events."),
                    fix)
    if facts.passid_secret_set is None:
        return Item(title, "cannot_check", _("Our secret is set; PASSID could not be asked whether it has one."), fix)
    return Item(title, "pass", _("Our secret is set and PASSID reports one too."))


def _test_webhook(facts: Facts) -> Item:
    title = _("Test webhook received and its signature verified")
    if facts.test_webhook_verified_at is None:
        return Item(
            title,
            "fail",
            _("No test webhook with a valid signature has arrived yet."),
            _('Press "Send test webhook" (or run `flask passid webhook-test`); if it does not arrive, '
              "check the registered URL, and if it arrives as invalid, check the secret."),
        )
    when = console_time(facts.test_webhook_verified_at)
    return Item(title, "pass", _("The latest test event arrived %(time)s and its HMAC-SHA256 signature held.",
                                 time=when))


def _webhook_answer_time(facts: Facts) -> Item:
    title = _("Webhook endpoint answers 200 within 10 seconds")
    fix = _('Press "Send test webhook" (or run `flask passid webhook-test`), then reload: the answer time of that '
            "delivery is the check.")
    if facts.test_webhook_verified_at is None:
        return Item(title, "cannot_check", _("No test webhook has arrived, so no answer has been timed."), fix)
    if facts.test_webhook_answered_ms is None:
        return Item(title, "cannot_check", _("The latest test webhook arrived before this app timed its answers."),
                    fix)
    took = _("%(num)s ms", num=console_number(facts.test_webhook_answered_ms))
    if facts.test_webhook_answered_ms < WEBHOOK_ANSWER_LIMIT_MS:
        return Item(title, "pass", _("The latest test webhook was checked and stored %(took)s after its request "
                                     "began; the 200 follows at once, and handling runs afterwards.", took=took))
    return Item(
        title,
        "fail",
        _("The latest test webhook took %(took)s to be stored: PASSID gives up after %(limit)s and sends it again.",
          took=took, limit=_("%(num)s ms", num=console_number(WEBHOOK_ANSWER_LIMIT_MS))),
        _("The receiver only checks the signature and stores the event before answering, so a slow answer means "
          "a slow database or a server too busy to take the request: see the console's Performance page, fix the "
          "cause, then send a test webhook again."),
    )


def _idempotency_key(facts: Facts) -> Item:
    title = _("Idempotency-Key sent on every verify")
    if not facts.idempotency_key_sent:
        return Item(
            title,
            "fail",
            _("A verify through PassidClient.verify (app/passid/client.py) went out without an Idempotency-Key, "
              "or with a different one for the same key given: a retry could spend a customer's token twice."),
            _("Restore the Idempotency-Key header in PassidClient.verify: the caller's key when given, a new "
              "one otherwise."),
        )
    return Item(
        title,
        "pass",
        _("Verifies sent through PassidClient.verify, the one path every verify takes, were watched on the wire: "
          "each carried an Idempotency-Key, generated when the caller gave none, and the same key twice went out "
          "the same, so a double tap or a retry replays instead of verifying twice."),
    )


def _https(facts: Facts) -> Item:
    title = _("Served over HTTPS")
    fix = _("Put the app behind a TLS-terminating proxy that sets X-Forwarded-Proto: https, set "
            "PASSID_TRUSTED_PROXIES=1, and open the console through your public https address.")
    if facts.https is None:
        return Item(title, "cannot_check", _("Only a page request can tell; open this checklist in the console."),
                    fix)
    if facts.https:
        return Item(title, "pass", _("This page came over HTTPS."))
    if facts.https_claimed_by_untrusted_proxy:
        return Item(
            title,
            "fail",
            _("A proxy says this page came over HTTPS (X-Forwarded-Proto), but the app is not told to trust it, "
              "so it sends no HSTS header and no secure-only cookies."),
            _("Set PASSID_TRUSTED_PROXIES to the number of proxies in front of the app (usually 1)."),
        )
    return Item(title, "fail", _("This page came over plain HTTP."), fix)


def _sanctions(facts: Facts) -> Item:
    title = _("HARD_DENY_SANCTIONS_MATCH never approved")
    if not facts.sanctions_deny_is_neutral:
        return Item(
            title,
            "fail",
            _("A sanctions deny, drawn as the customer's widget draws it, is not a plain decline: it is another "
              "state, or its words or its event for the embedding page name the reason."),
            _("Key the neutral wording in app/rules/customer_wording.py (NEUTRAL_DECLINE) on "
              "DenyReason.HARD_DENY_SANCTIONS_MATCH, draw every deny as the declined state, and keep the reason out "
              "of the decline event (app/widget/states.py)."),
        )
    return Item(
        title,
        "pass",
        _("Drawn as the customer's widget draws it, a sanctions deny is the declined state in neutral words, "
          "and its event for the embedding page says only \"denied\" (no tipping-off); staff see the real reason "
          "in History, the institution's server in /api/results. PASSID answers it as verified=false and the "
          "widget draws success only for 'completed', so it can never approve."),
    )


def _expiry(facts: Facts) -> Item:
    title = _('Expired request shows "Generate new code"')
    if not facts.expiry_offers_new_code:
        return Item(title, "fail", _('The expired state, rendered as the widget draws it, has no "Generate new code" '
                                     "button in a form."),
                    _('Restore the "Generate new code" button in the expired branch of '
                      "templates/widget/_declined.html."))
    return Item(title, "pass", _('The expired state, rendered as the widget draws it, offers a "Generate new code" '
                                 "button, not an error."))


def failed(items: list[Item]) -> list[Item]:
    return [item for item in items if item.verdict == "fail"]


# --- gathering the facts -----------------------------------------------------------------------


def committed_secret_files(root: Path, api_key: str | None) -> tuple[str, ...] | None:
    """Tracked files that are .env files or contain the key in use; None when git cannot tell.

    The key goes to git on stdin, never on the command line where `ps` would show it.
    """
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=5, check=True)
        found = [name for name in listed.stdout.decode().split("\0") if _is_env_file(name)]
        if api_key:
            grep = subprocess.run(
                ["git", "grep", "-l", "-F", "-f", "-"], cwd=root, input=api_key.encode(),
                capture_output=True, timeout=10,
            )
            if grep.returncode not in (0, 1):  # 1 means "no match"
                return None
            found += [name for name in grep.stdout.decode().splitlines() if name]
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(sorted(set(found)))


def _is_env_file(name: str) -> bool:
    base = PurePosixPath(name).name
    if base == ".env":
        return True
    return base.startswith(".env.") and not base.endswith((".example", ".sample", ".template"))


def code_facts() -> dict[str, bool]:
    """What the app's own code does, seen by running it (needs an app context)."""
    return {
        "sanctions_deny_is_neutral": sanctions_deny_is_neutral(),
        "idempotency_key_sent": verify_sends_idempotency_key(),
        "expiry_offers_new_code": expired_state_offers_new_code(),
    }


class _CannedVerify(HTTPAdapter):
    """Stands in for PASSID on a client's session: keeps each request sent and answers a contract-shaped deny.

    Nothing leaves the process, so the check can run on every page load, on a live key too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        from app.passid.client import API_VERSION

        self.sent.append(request)
        raw = request.body  # the client sends JSON as bytes
        body = json.loads(raw if isinstance(raw, (bytes, str)) else b"{}")
        response = requests.Response()
        response.status_code = 200
        response.headers.update({"Content-Type": "application/json", "X-PASSID-API-Version": API_VERSION})
        response._content = json.dumps(
            {"verified": False, "token": body.get("token", ""), "denyReason": "TOKEN_NOT_FOUND"}
        ).encode()
        response.request, response.url = request, request.url or ""
        return response


def verify_sends_idempotency_key() -> bool:
    """Run the real PassidClient.verify three times against a canned PASSID and read the headers it sent.

    Twice with one key (a retry must send it unchanged) and once with none (the client must make one).
    """
    from app.passid import PassidClient, PassidError

    adapter = _CannedVerify()
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = PassidClient("https://passid.invalid", session=session)
    token = "AB3X7YQMK9PQ3MNX"
    try:
        client.verify(token, idempotency_key="checklist-retry")
        client.verify(token, idempotency_key="checklist-retry")
        client.verify(token)
    except PassidError:
        return False
    finally:
        session.close()
    sent = [request.headers.get("Idempotency-Key") for request in adapter.sent]
    return len(sent) == 3 and sent[0] == sent[1] == "checklist-retry" and bool(sent[2])


class _SubmitButtons(HTMLParser):
    """Labels of the submit controls inside forms: what a customer can press, with or without JavaScript."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._forms = 0
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        kind = attributes.get("type", "submit").lower()
        if tag == "form":
            self._forms += 1
        elif tag == "button" and self._forms and kind == "submit":
            self._button = []
        elif tag == "input" and self._forms and kind == "submit":
            self.labels.append(attributes.get("value", "").strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._forms = max(0, self._forms - 1)
        elif tag == "button" and self._button is not None:
            self.labels.append(" ".join("".join(self._button).split()))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)


def offers_new_code(html: str) -> bool:
    """A submit button labelled "Generate new code" inside a form: the words alone are not a way out."""
    parser = _SubmitButtons()
    parser.feed(html)
    parser.close()
    return NEW_CODE_BUTTON in parser.labels


def render_final_state(status: str, deny_reason: str | None = None, *, embedded: bool = False) -> str:
    """A final state's partial, decided by `states.final_view` and drawn by the widget's own `final_state`
    for an htmx poll, the way a customer's widget meets it (needs an app context). Made-up ids, no claims.
    `embedded` draws it inside an embed, with the event the embedding page receives.

    The request is built on the public address, the one host every configuration trusts.
    """
    from app.rules.verifications import FinalStatus, Finished
    from app.widget.options import options_from
    from app.widget.routes import final_state

    finished = Finished(result_id="checklist-result", status=FinalStatus(status), claims=None, token=None,
                        request_id="req_checklist", deny_reason=deny_reason, decline_reason=None)
    # A fresh app context too: a request context alone shares this page's `g`, where the customer's request would
    # leave its locale and Flask-Babel its cached translations, and the page around the states would speak English.
    with current_app.app_context(), current_app.test_request_context(
            "/verify/qr/status", base_url=current_app.config["PUBLIC_BASE_URL"], headers={"HX-Request": "true"}):
        options = options_from({})
        if embedded:
            options = replace(options, parent_origin=EMBEDDING_ORIGIN)
        return final_state(options, finished).get_data(as_text=True)


def expired_state_offers_new_code() -> bool:
    """False, not a failed console page, when the state cannot even be drawn: a customer would not see it either."""
    try:
        return offers_new_code(render_final_state("expired"))
    except Exception:  # whatever stops the drawing stops the customer too; the page must still answer
        current_app.logger.warning("the expired state could not be rendered", exc_info=True)
        return False


def sanctions_deny_is_neutral() -> bool:
    """A sanctions deny, drawn as the customer's widget draws it inside an embed: the declined state, whose
    words and event for the embedding page do not name the reason (telling a customer they matched a
    watch-list is tipping-off)."""
    from app.passid import DenyReason

    try:
        html = render_final_state("denied", DenyReason.HARD_DENY_SANCTIONS_MATCH, embedded=True)
    except Exception:  # as above: a state that cannot be drawn is a failure, not a console error
        current_app.logger.warning("the sanctions deny could not be rendered", exc_info=True)
        return False
    lowered = html.lower()
    return ('data-view="declined"' in html and "passid:decline" in html
            and not any(word in lowered for word in _TIPPING_OFF_WORDS))


def gather_facts(*, https: bool | None, https_claimed_by_untrusted_proxy: bool = False) -> Facts:
    """Collect the facts from the running app (needs an app context)."""
    from app.passid import PassidError
    from app.plumbing.passid_connection import passid_client, passid_connection
    from app.rules.webhook_receipts import latest_verified_test_webhook

    connection = passid_connection()
    url, passid_secret, error = None, None, None
    try:
        webhook = passid_client().get_webhook()
        url, passid_secret = webhook.url, webhook.secret_set
    except PassidError as problem:
        error = str(problem)
    receipt = latest_verified_test_webhook()
    return Facts(
        api_key=connection.api_key,
        webhook_secret_set=bool(connection.webhook_secrets),
        registered_webhook_url=url,
        passid_secret_set=passid_secret,
        webhook_lookup_error=error,
        test_webhook_verified_at=receipt.received_at if receipt else None,
        test_webhook_answered_ms=receipt.answered_ms if receipt else None,
        https=https,
        https_claimed_by_untrusted_proxy=https_claimed_by_untrusted_proxy,
        committed_secret_files=committed_secret_files(PROJECT_ROOT, connection.api_key),
        **code_facts(),
    )
