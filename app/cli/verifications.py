"""`flask passid verify` and `session`: a token the customer reads out, a session the institution's server made."""

from __future__ import annotations

import uuid

import click

from app.cli.tokens import token_argument
from app.passid import PassidError, PassidTimeout, PassidUnavailable
from app.plumbing.passid_connection import passid_client
from app.rules import audit, sessions, verifications
from app.rules.claims_summary import claims_summary


@click.command("verify")
@click.argument("token")
@click.option(
    "--idempotency-key", help="Repeat the key of a verify that got no answer, so the token is not used twice."
)
def verify_command(token: str, idempotency_key: str | None) -> None:
    """Verify a share token the customer reads out, and record it in the console history."""
    token = token_argument(token)
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
    if finished.decision is not None:  # the verdict recorded with it: the one every screen and the API read
        click.echo(f"  verdict: {finished.decision.verdict} ({', '.join(finished.decision.reasons)})")
    click.echo(f"  Idempotency-Key: {key}")
    click.echo(f"  recorded as {finished.result_id}" + (" (a replay of the first answer)" if result.replayed else ""))


@click.command("session")
@click.argument("session_id")
def session_command(session_id: str) -> None:
    """Show a session the institution's server created: its reference, status, verdict, result and every attempt
    (as GET /api/sessions/<id>)."""
    session = sessions.find(session_id.strip())
    if session is None:
        raise click.ClickException(f"no session has the id {session_id[:80]!r}")
    attempts = sessions.attempts_of(session)
    state = sessions.state_of(session, attempts=attempts)
    click.echo(f"{state.status.value}  {session.id}")
    click.echo(f"  reference: {session.reference}")
    click.echo(f"  expires:   {session.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    if session.cancelled_at is not None:
        click.echo(f"  cancelled: {session.cancelled_at:%Y-%m-%d %H:%M:%S} UTC")
    result = state.result
    if result is not None:
        decision = verifications.verdict_of(result)
        click.echo(f"  result:    {result.id} ({result.status}, {result.source})")
        if decision is not None:
            click.echo(f"  verdict: {decision.verdict} ({', '.join(decision.reasons)})")
        if result.redacted_at is not None:
            click.echo(f"  redacted {result.redacted_at:%Y-%m-%d %H:%M} UTC — {result.redaction_reason}")
        if result.claims or result.deny_reason:  # a deny reason is the person's data too (a sanctions match)
            audit.record(audit.Action.CLAIMS_VIEWED, subject=result.id, detail="flask passid session",
                         actor=audit.CLI_ACTOR)
        if result.claims:
            click.echo(f"  {claims_summary(result.claims)}")
        if result.deny_reason:
            click.echo(f"  deny reason: {result.deny_reason}")
    if session.redacted_at is None and attempts:
        click.echo(f"  attempts ({len(attempts)}, oldest first):")
        for attempt in attempts:
            verdict = f"  verdict {attempt.verdict}" if attempt.verdict else ""
            click.echo(f"    {attempt.created_at:%Y-%m-%d %H:%M:%S} UTC  {attempt.id}  {attempt.source}  "
                       f"{attempt.status}{verdict}")
