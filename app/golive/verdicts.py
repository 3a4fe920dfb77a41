"""The go-live checklist's verdicts: plain facts in, one verdict per item out.

No request, no network and no Flask (a contract in pyproject.toml holds it), so every verdict can be tested
with made-up facts. The facts come from `app.golive.facts` and `app.golive.probes`; the words from the caller
(`Wording`): the console and the CLI word them in the staff member's language.

A verdict is earned: "pass" means the behaviour was seen. An item that no run time check can see says
"by_construction" (shown as "Guaranteed by construction") with where the guarantee lives, never a bare "pass".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit


def N_(text: str) -> str:  # gettext's conventional name for "mark only" (Babel extracts it by default)
    """Marks `text` for the catalogue without translating it: it is worded later, in the reader's language."""
    return text


Verdict = Literal["pass", "fail", "cannot_check", "by_construction"]
# English msgids, marked for the staff catalogue (N_) and worded when the items are (`Wording.gettext`).
VERDICT_LABELS: dict[Verdict, str] = {
    "pass": N_("Pass"),
    "fail": N_("Fail"),
    "cannot_check": N_("Cannot check"),
    "by_construction": N_("Guaranteed by construction"),
}
WEBHOOK_PATH = "/webhooks/passid"
# The guide's limit: PASSID counts a delivery not answered within 10 s as failed and retries it.
WEBHOOK_ANSWER_LIMIT_MS = 10_000


@dataclass(frozen=True)
class Item:
    title: str
    verdict: Verdict
    detail: str
    how_to_fix: str = ""
    label: str = ""  # the verdict in the reader's words: `evaluate_checklist` words it; plain English otherwise

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", VERDICT_LABELS[self.verdict])


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
    # A verify through PassidClient.verify, watched on the wire, carried the header (see app.golive.probes).
    idempotency_key_sent: bool
    # The expired state, rendered as the widget renders it, has a real "Generate new code" button.
    expiry_offers_new_code: bool
    https: bool | None  # the request was secure, as the app sees it; None: not asked over HTTP (the CLI)
    committed_secret_files: tuple[str, ...] | None  # None: no git to ask
    # X-Forwarded-Proto said https, but PASSID_TRUSTED_PROXIES does not let the app believe it.
    https_claimed_by_untrusted_proxy: bool = False
    sanctions_deny_is_neutral: bool = True
    # Our own notifications to the bank's backend (PASSID_NOTIFY_URL): whether an HTTP answer came back from it;
    # None when no URL is set.
    notify_url_answers: bool | None = None
    # Staff sign-in: the bank's single sign-on configured (PASSID_OIDC_ISSUER), PASSID_LOCAL_PASSWORDS, and the
    # enabled accounts other than the break-glass one that sign in with a password (None: not known).
    single_sign_on: bool = False
    local_passwords: bool = True
    password_accounts: tuple[str, ...] | None = ()
    # PASSID_STAFF_MFA: who must pass a second factor at sign-in (admin, all or off).
    staff_second_factor: str = "admin"


class Translate(Protocol):
    def __call__(self, text: str, **variables: Any) -> str: ...


def _english(text: str, **variables: Any) -> str:
    """gettext's contract with no catalogue: the msgid itself, its placeholders filled."""
    return text % variables if variables else text


@dataclass(frozen=True)
class Wording:
    """How the verdicts are put into words: the console and the CLI pass the staff member's language
    (`app.golive.wording.STAFF_WORDING`); without one, plain English, so a test needs no app."""

    gettext: Translate
    time: Callable[[datetime], str]
    number: Callable[[int], str]


PLAIN_ENGLISH = Wording(gettext=_english, time=lambda moment: f"{moment:%Y-%m-%d %H:%M} UTC",
                        number=lambda number: f"{number:,}")


def _key_kind(key: str | None, _: Translate) -> str:
    """Only the prefix is ever shown: the key itself must not reach a page or a log."""
    if not key:
        return _("no key")
    if key.startswith("sk_live_"):
        return _("a live key (sk_live_…)")
    if key.startswith("sk_sandbox_"):
        return _("a sandbox key (sk_sandbox_…)")
    return _("a key of an unknown kind")


def evaluate_checklist(facts: Facts, words: Wording = PLAIN_ENGLISH) -> list[Item]:
    """One item per line of the guide's list, in its order, worded by `words` (plain English by default)."""
    items = [
        _live_key(facts, words),
        _secrets_not_committed(facts, words),
        _webhook_url(facts, words),
        _webhook_secret(facts, words),
        _test_webhook(facts, words),
        _webhook_answer_time(facts, words),
        _https(facts, words),
        _idempotency_key(facts, words),
        _sanctions(facts, words),
        _expiry(facts, words),
        _notify_url(facts, words),
        _local_passwords(facts, words),
        _staff_second_factor(facts, words),
    ]
    return [replace(item, label=words.gettext(VERDICT_LABELS[item.verdict])) for item in items]


def _live_key(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
    title = _("Live API key configured")
    kind = _key_kind(facts.api_key, _)
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


def _secrets_not_committed(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _webhook_url(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _webhook_secret(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _test_webhook(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
    title = _("Test webhook received and its signature verified")
    if facts.test_webhook_verified_at is None:
        return Item(
            title,
            "fail",
            _("No test webhook with a valid signature has arrived yet."),
            _('Press "Send test webhook" (or run `flask passid webhook-test`); if it does not arrive, '
              "check the registered URL, and if it arrives as invalid, check the secret."),
        )
    when = words.time(facts.test_webhook_verified_at)
    return Item(title, "pass", _("The latest test event arrived %(time)s and its HMAC-SHA256 signature held.",
                                 time=when))


def _webhook_answer_time(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
    title = _("Webhook endpoint answers 200 within 10 seconds")
    fix = _('Press "Send test webhook" (or run `flask passid webhook-test`), then reload: the answer time of that '
            "delivery is the check.")
    if facts.test_webhook_verified_at is None:
        return Item(title, "cannot_check", _("No test webhook has arrived, so no answer has been timed."), fix)
    if facts.test_webhook_answered_ms is None:
        return Item(title, "cannot_check", _("The latest test webhook arrived before this app timed its answers."),
                    fix)
    took = _("%(num)s ms", num=words.number(facts.test_webhook_answered_ms))
    if facts.test_webhook_answered_ms < WEBHOOK_ANSWER_LIMIT_MS:
        return Item(title, "pass", _("The latest test webhook was checked and stored %(took)s after its request "
                                     "began; the 200 follows at once, and handling runs afterwards.", took=took))
    return Item(
        title,
        "fail",
        _("The latest test webhook took %(took)s to be stored: PASSID gives up after %(limit)s and sends it again.",
          took=took, limit=_("%(num)s ms", num=words.number(WEBHOOK_ANSWER_LIMIT_MS))),
        _("The receiver only checks the signature and stores the event before answering, so a slow answer means "
          "a slow database or a server too busy to take the request: see the console's Performance page, fix the "
          "cause, then send a test webhook again."),
    )


def _idempotency_key(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _https(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _sanctions(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
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


def _expiry(facts: Facts, words: Wording) -> Item:
    _ = words.gettext
    title = _('Expired request shows "Generate new code"')
    if not facts.expiry_offers_new_code:
        return Item(title, "fail", _('The expired state, rendered as the widget draws it, has no "Generate new code" '
                                     "button in a form."),
                    _('Restore the "Generate new code" button in the expired branch of '
                      "templates/widget/_declined.html."))
    return Item(title, "pass", _('The expired state, rendered as the widget draws it, offers a "Generate new code" '
                                 "button, not an error."))


def _notify_url(facts: Facts, words: Wording) -> Item:
    """Not in the guide's list: this app's own events to the bank's backend, when the bank wants them."""
    _ = words.gettext
    title = _("Notification URL answers")
    if facts.notify_url_answers is None:
        return Item(title, "cannot_check", _("PASSID_NOTIFY_URL is not set: your backend is not told when a session "
                                             "or verification ends, and reads results from the API instead."),
                    _("To be told, set PASSID_NOTIFY_URL and PASSID_NOTIFY_SECRET, then use "
                      "“Send test event” on the notifications page."))
    if not facts.notify_url_answers:
        return Item(title, "fail", _("PASSID_NOTIFY_URL did not answer (refused address, no connection, a server "
                                     "error or not found)."),
                    _("Check the URL, that your receiver runs and takes POST at that path, and that it is "
                      "reachable from this server; the notifications page shows each delivery's result."))
    return Item(title, "pass", _("PASSID_NOTIFY_URL answers over HTTP."))


# Accounts named in the item's detail; the rest are counted.
_NAMES_SHOWN = 5


def _local_passwords(facts: Facts, words: Wording) -> Item:
    """Not in the guide's list: a bank's security team expects staff to sign in through its own provider, so
    that a leaver loses access the day they leave, with a password only for the break-glass account."""
    _ = words.gettext
    title = _("Local passwords limited to break-glass under single sign-on")
    off = _("Set PASSID_LOCAL_PASSWORDS=off: the break-glass account made by `flask staff break-glass` still signs "
            "in with its password, for the day the provider is down.")
    if not facts.single_sign_on:
        return Item(title, "cannot_check", _("Single sign-on is not configured: staff sign in with local passwords."),
                    _("Connect the bank's identity provider (PASSID_OIDC_ISSUER, PASSID_OIDC_CLIENT_ID, "
                      "PASSID_OIDC_CLIENT_SECRET and PASSID_OIDC_ROLE_MAP; see docs/staff.md), then: %(off)s",
                      off=off))
    if not facts.local_passwords:
        return Item(title, "pass", _("Staff sign in through single sign-on; local passwords are off, but for the "
                                     "break-glass account."))
    if facts.password_accounts is None:
        return Item(title, "cannot_check", _("This app cannot list its staff accounts."), off)
    if facts.password_accounts:
        names = ", ".join(facts.password_accounts[:_NAMES_SHOWN])
        more = len(facts.password_accounts) - _NAMES_SHOWN
        if more > 0:
            names = _("%(names)s and %(num)s more", names=names, num=words.number(more))
        return Item(title, "fail", _("Single sign-on is on, yet these accounts still sign in with a local "
                                     "password: %(names)s.", names=names),
                    _("%(off)s Or disable these accounts on the Staff page.", off=off))
    return Item(title, "pass", _("Single sign-on is on, and no account but the break-glass one has a local "
                                 "password."))


def _staff_second_factor(facts: Facts, words: Wording) -> Item:
    """Not in the guide's list: the bank's security team asks it of any back office that shows personal data."""
    _ = words.gettext
    title = _("Staff sign-in has a second factor for admins")
    if facts.staff_second_factor == "all":
        return Item(title, "pass", _("PASSID_STAFF_MFA=all: every staff member passes a second factor (a passkey, an "
                                     "authenticator code, or the bank's provider's own) before any page opens; one "
                                     "who has none sets one up first."))
    if facts.staff_second_factor == "admin":
        return Item(title, "pass", _("PASSID_STAFF_MFA=admin: every administrator passes a second factor (a passkey, "
                                     "an authenticator code, or the bank's provider's own) before any page opens; one "
                                     "who has none sets one up first."))
    return Item(
        title,
        "fail",
        _("PASSID_STAFF_MFA=off: administrators, who read the audit log, erase people and manage staff, sign in "
          "with a password alone unless they set up a second factor themselves."),
        _("Set PASSID_STAFF_MFA=admin (or all, for every role) and restart: each administrator sets up a passkey "
          "or an authenticator app at their next sign-in."),
    )


def failed(items: list[Item]) -> list[Item]:
    return [item for item in items if item.verdict == "fail"]
