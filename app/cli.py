"""Operator commands: `flask passid …`.

Every command talks to PASSID through the same client as the web pages, so
it works against the live API and the embedded sandbox alike. A failure is
one readable line and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import time
import uuid

import click
from flask import Flask, current_app

from app.passid import NotFound, PassidError, PassidTimeout, PassidUnavailable, normalise_token
from app.plumbing.database import db
from app.plumbing.passid_connection import passid_client, passid_connection
from app.rules import audit
from app.staff.models import StaffUser


def init_app(app: Flask) -> None:
    app.cli.add_command(passid_group)


@click.group("passid")
def passid_group() -> None:
    """Talk to PASSID (live or the embedded sandbox)."""


@passid_group.command("demo")
def demo_command() -> None:
    """Onboard the demo institution on the embedded sandbox (once) and print where to go.

    With a PASSID_BASE_URL (live, or PASSID's hosted sandbox) there is no sandbox here: it onboards
    nothing, calls nothing and prints no sandbox pages, since they would not answer.
    """
    embedded = bool(current_app.config["PASSID_EMBEDDED_SANDBOX"])
    connection = passid_connection()  # embedded: onboards the demo institution on first use
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo("PASSID Verify for Flask")
    where = " (embedded sandbox)" if embedded else ""
    click.echo(f"  PASSID API:        {connection.base_url}{where}")
    if embedded and connection.institution_id:
        name = current_app.config["PASSID_INSTITUTION_NAME"]
        click.echo(f"  Demo institution:  {name} ({connection.institution_id})")
        if connection.sandbox:
            # The key a newcomer's backend sends as X-Institution-Key, shown on the operator's own
            # terminal because no page or log ever shows it. Only the demo institution's sandbox key:
            # a configured key (live or not) has no institution id here and is never printed.
            click.echo(f"  Institution key:   {connection.api_key}   (sandbox; X-Institution-Key for /api/…)")
    click.echo(f"  Widget:            {base}/verify")
    click.echo(f"  Branch counter:    {base}/branch/   (staff)")
    click.echo(f"  Console:           {base}/console/  (staff)")
    if embedded:
        click.echo(f"  Sandbox phone:     {base}/sandbox/phone")
        click.echo(f"  Share a token:     {base}/sandbox/phone/share")
    click.echo(f"  Health:            {base}/healthz")
    if not db.session.execute(db.select(StaffUser.id).limit(1)).first():
        click.echo("  No staff account yet: .venv/bin/flask --app app staff create YOUR-NAME --role admin")


def _token_argument(raw: str) -> str:
    token = normalise_token(raw[:100])
    if token is None:
        raise click.BadParameter(
            "not a PASSID token: it has 12 or 16 letters and digits, like PASSID-AB3X-7YQM-K9PQ-3MNX",
            param_hint="TOKEN",
        )
    return token


@passid_group.command("verify")
@click.argument("token")
@click.option(
    "--idempotency-key", help="Repeat the key of a verify that got no answer, so the token is not used twice."
)
def verify_command(token: str, idempotency_key: str | None) -> None:
    """Verify a share token the customer reads out, and record it in the console history."""
    from app.rules import verifications
    from app.rules.claims_summary import claims_summary

    token = _token_argument(token)
    key = idempotency_key or f"cli-{uuid.uuid4().hex}"
    try:
        result = passid_client().verify(token, idempotency_key=key)
    except (PassidTimeout, PassidUnavailable) as error:
        raise click.ClickException(
            f"no answer from PASSID ({error}). The token may or may not have been used: "
            f"retry with --idempotency-key {key}"
        ) from None
    except PassidError as error:
        raise click.ClickException(f"PASSID refused the verify: {error}") from None
    # Everything the token granted: the operator asked for this token by hand, not through an embed's list.
    finished = verifications.record_verify_result(
        result, source=verifications.Source.CLI, idempotency_key=key,
        wanted=[str(permission) for permission in result.permissions],
    )
    if finished.redacted_at is not None:  # the person was erased: their tombstone refused this record
        click.echo(f"erased  {result.token}: this token's person was erased; nothing of them is shown or kept")
        return
    if result.verified:
        if finished.claims:
            audit.record(audit.Action.CLAIMS_VIEWED, subject=finished.result_id, detail="flask passid verify",
                         actor=audit.CLI_ACTOR)
        click.echo(f"verified  {result.token}")
        click.echo(f"  {claims_summary(result.claims)}")
        if result.recommendation:
            click.echo(f"  recommendation: {result.recommendation}")
    else:
        reason = result.deny_reason.value if result.deny_reason else "unknown"
        click.echo(f"denied  {result.token}: {reason}")
        if result.message:
            click.echo(f"  {result.message}")
    click.echo(f"  Idempotency-Key: {key}")
    click.echo(f"  recorded as {finished.result_id}" + (" (a replay of the first answer)" if result.replayed else ""))


@passid_group.command("session")
@click.argument("session_id")
def session_command(session_id: str) -> None:
    """Show a session the institution's server created: its reference, status and result (as GET /api/sessions)."""
    from app.rules import sessions as records
    from app.rules.claims_summary import claims_summary

    session = records.find(session_id.strip())
    if session is None:
        raise click.ClickException(f"no session has the id {session_id[:80]!r}")
    state = records.state_of(session)
    click.echo(f"{state.status.value}  {session.id}")
    click.echo(f"  reference: {session.reference}")
    click.echo(f"  expires:   {session.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    result = state.result
    if result is not None:
        click.echo(f"  result:    {result.id} ({result.status}, {result.source})")
        if result.redacted_at is not None:
            click.echo(f"  redacted {result.redacted_at:%Y-%m-%d %H:%M} UTC — {result.redaction_reason}")
        if result.claims or result.deny_reason:  # a deny reason is the person's data too (a sanctions match)
            audit.record(audit.Action.CLAIMS_VIEWED, subject=result.id, detail="flask passid session",
                         actor=audit.CLI_ACTOR)
        if result.claims:
            click.echo(f"  {claims_summary(result.claims)}")
        if result.deny_reason:
            click.echo(f"  deny reason: {result.deny_reason}")


def _result_id_of(token: str) -> str | None:
    """The audit log names a verification by its result id, never by its token: the newest row for it."""
    from app.plumbing.encryption import lookup_hashes
    from app.rules.verifications import Verification

    return db.session.execute(
        db.select(Verification.id).where(Verification.token_hash.in_(lookup_hashes(token)))
        .order_by(Verification.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def _outcome_choices() -> list[str]:
    from app.rules.outcomes import OUTCOME_MEANINGS

    return [str(outcome) for outcome in OUTCOME_MEANINGS]  # the values: click matches enum members by name


@passid_group.command(
    "outcome",
    epilog="Outcomes: repaid (in full, on schedule), no_default (active, nothing missed), delinquent (30+ days "
    "past due), defaulted (90+ days past due or written off), fraud_confirmed, account_closed (by you, not a "
    "default), other (explain with --notes).",
)
@click.argument("token")
@click.argument("outcome", type=click.Choice(_outcome_choices()))
@click.option("--product", "product_type", required=True, help="Product type, e.g. personal_loan.")
@click.option("--amount", required=True, help="Amount lent, digits only (2500 or 2500.50).")
@click.option("--currency", default="USD", show_default=True, help="ISO-4217 code.")
@click.option("--notes", default=None, help="Required for 'other'; at most 1000 characters.")
def outcome_command(token: str, outcome: str, product_type: str, amount: str, currency: str,
                    notes: str | None) -> None:
    """Report what happened to the loan behind a verified TOKEN (one outcome per token)."""
    from app.rules.outcome_entry import MAX_PRODUCT_TYPE, notes_problem, outcome_label, parse_amount, parse_currency
    from app.rules.outcome_reporting import AlreadyReported, OutcomeEntry, PersonErased, report_outcome

    token = _token_argument(token)
    product_type = product_type.strip()
    if not 1 <= len(product_type) <= MAX_PRODUCT_TYPE:
        raise click.BadParameter(f"1–{MAX_PRODUCT_TYPE} characters", param_hint="--product")
    try:
        entry = OutcomeEntry(outcome, product_type, parse_amount(amount), parse_currency(currency),
                             (notes or "").strip() or None)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    problem = notes_problem(outcome, notes or "")
    if problem:
        raise click.BadParameter(problem, param_hint="--notes")
    try:
        result = report_outcome(passid_client(), token, entry, recorded=lambda report: audit.note(
            audit.Action.OUTCOME_REPORTED, subject=_result_id_of(token), detail=report.outcome,
            actor=audit.CLI_ACTOR))
    except NotFound:
        raise click.ClickException(
            f"PASSID has no approved verification of {token} for this institution, so it takes no outcome for it"
        ) from None
    except PassidError as error:
        raise click.ClickException(f"the outcome was not reported: {error}") from None
    if isinstance(result, PersonErased):
        raise click.ClickException(f"the person behind {token} was erased: no outcome is reported or kept about them")
    if isinstance(result, AlreadyReported):
        earlier = result.earlier
        if earlier is None:
            click.echo(f"already reported  {token}: PASSID holds an outcome made elsewhere; we have no copy yet")
        else:
            click.echo(
                f"already reported  {token}: {outcome_label(earlier.outcome)} · {earlier.product_type} · "
                f"{earlier.amount_value:.2f} {earlier.currency} ({earlier.reported_at:%Y-%m-%d %H:%M} UTC)"
            )
        return
    report = result.report
    at_decision = f" (score {report.fsi_score}, tier {report.tier} at decision)" if report.fsi_score else ""
    click.echo(
        f"reported  {token}: {outcome_label(report.outcome)} · {report.product_type} · "
        f"{report.amount_value:.2f} {report.currency}{at_decision}"
    )


@passid_group.command("webhook-test")
@click.option("--wait", default=15.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for the test event to reach this app (0: do not wait).")
def webhook_test_command(wait: float) -> None:
    """Ask PASSID to send a test webhook, and check it arrives here with a valid signature."""
    from app.plumbing.database import db
    from app.rules.webhook_receipts import receipt_for_event

    try:
        event_id = passid_client().send_test_webhook()
    except PassidError as error:
        raise click.ClickException(f"PASSID did not take the test webhook: {error}") from None
    audit.record(audit.Action.TEST_WEBHOOK_SENT, subject=event_id, actor=audit.CLI_ACTOR)
    click.echo(f"sent  test webhook {event_id}")
    if wait <= 0:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        receipt = receipt_for_event(event_id)
        db.session.rollback()  # end the read so the next one sees the receiver's commits
        if receipt is not None:
            if receipt.signature_result != "valid":
                raise click.ClickException(
                    f"it arrived, but its signature was {receipt.signature_result}: "
                    "PASSID_WEBHOOK_SECRET must equal the secret saved with PASSID"
                )
            click.echo("received  signature valid")
            return
        time.sleep(0.2)
    raise click.ClickException(
        f"not received here within {wait:g}s: check the webhook URL registered with PASSID (flask passid checklist)"
    )


@passid_group.command("checklist")
@click.pass_context
def checklist_command(ctx: click.Context) -> None:
    """The go-live checklist; exits non-zero while any item fails."""
    from app.golive.facts import gather_facts
    from app.golive.verdicts import evaluate_checklist, failed
    from app.golive.wording import STAFF_WORDING

    items = evaluate_checklist(gather_facts(https=None), STAFF_WORDING)
    for item in items:
        click.echo(f"[{item.label.upper()}] {item.title}")
        click.echo(f"    {item.detail}")
        if item.how_to_fix and item.verdict not in ("pass", "by_construction"):
            click.echo(f"    fix: {item.how_to_fix}")
    failures = failed(items)
    passed = sum(item.verdict == "pass" for item in items)
    click.echo(f"{passed} of {len(items)} pass, {len(failures)} fail, {len(items) - passed - len(failures)} "
               "cannot be checked from here.")
    if failures:
        ctx.exit(1)


@passid_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be erased, and erase nothing.")
def purge_command(dry_run: bool) -> None:
    """Erase what is older than PASSID_RETENTION_DAYS now, as the daily background purge does."""
    from app.rules import audit
    from app.rules.retention import purge, retention_cutoff

    cutoff = retention_cutoff()
    erased = purge(dry_run=dry_run, actor=audit.CLI_ACTOR)
    days = current_app.config["PASSID_RETENTION_DAYS"]
    if dry_run:
        click.echo(f"dry run, nothing erased. Older than {days} days ({cutoff:%Y-%m-%d %H:%M} UTC), "
                   f"a purge would erase: {erased.describe()}")
    else:
        click.echo(f"erased (older than {days} days, before {cutoff:%Y-%m-%d %H:%M} UTC): {erased.describe()}")


@passid_group.command("redact")
@click.argument("result_id", required=False)
@click.option("--reference", help="Erase every record of this reference of yours instead (each verification and "
              "session carrying it, and every person they reach), for an erasure request filed under it.")
@click.option("--reason", required=True, help="Why (recorded on the row and in the audit log; 1–500 characters). "
              "Name the request, not the person: the audit log is never erased.")
def redact_command(result_id: str | None, reference: str | None, reason: str) -> None:
    """Erase one person's data now: the verification RESULT_ID (or --reference REF) and everything tied to it."""
    from app.rules import audit
    from app.rules.retention import (
        AlreadyRedacted,
        RedactionRefused,
        UnknownResult,
        clean_reason,
        redact,
        redact_reference,
    )

    if (result_id is None) == (reference is None):
        raise click.UsageError("name either a RESULT_ID or --reference REF (not both)")
    try:
        reason = clean_reason(reason)
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--reason") from None
    if "\x00" in (result_id or ""):  # no id holds one, and PostgreSQL refuses to even look one up
        raise click.ClickException(str(UnknownResult(result_id or "")))
    try:
        if reference is not None:
            done = redact_reference(reference, reason, actor=audit.CLI_ACTOR)
        else:
            done = redact((result_id or "").strip(), reason, actor=audit.CLI_ACTOR)
    except AlreadyRedacted as already:  # the wanted state holds: said, and not an error for a script
        click.echo(str(already))
        return
    except RedactionRefused as refused:
        raise click.ClickException(str(refused)) from None
    if reference is not None:
        click.echo(f"redacted  every record of the reference {reference.strip()!r}: "
                   f"{', '.join(done.result_ids) or 'no verification'}")
    else:
        others = done.result_ids[1:]
        click.echo(f"redacted  {done.result_ids[0]}" + (f" and {len(others)} more of the same person: "
                                                        f"{', '.join(others)}" if others else ""))
    click.echo(f"  erased: {done.erased.describe()}")


@passid_group.command("rotate-data-key")
def rotate_data_key_command() -> None:
    """Re-encrypt every stored claim, token, code and webhook body under the first key of PASSID_DATA_KEY.

    Run once every server encrypts with NEW (PASSID_DATA_KEY=NEW, PASSID_DATA_KEYS_DECRYPT_ONLY=OLD), then
    drop OLD everywhere (docs/data-protection.md, "Rotating it").
    """
    from app.plumbing import encryption
    from app.rules import audit

    ring = encryption.keyring()
    try:
        with db.engine.connect() as connection:
            counts = encryption.rotate_all(connection, ring)
    except encryption.DataKeyError as problem:
        raise click.ClickException(f"{problem}: list the key those rows were encrypted with after the new one"
                                   ) from None
    detail = ", ".join(f"{table} {rows}" for table, rows in counts.items())
    audit.note(audit.Action.DATA_KEY_ROTATED, actor=audit.CLI_ACTOR,
               detail=f"re-encrypted under key 1 of {len(ring.keys)}: {detail}")
    db.session.commit()
    for table, rows in counts.items():
        click.echo(f"re-encrypted  {table}: {rows} rows")
    click.echo(f"done: every encrypted value is now under the first of {len(ring.keys)} key(s); once every "
               "server encrypts with that key, the others can be removed from PASSID_DATA_KEY and "
               "PASSID_DATA_KEYS_DECRYPT_ONLY")
