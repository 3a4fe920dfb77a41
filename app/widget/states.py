"""Which final state a finished verification shows, and which event the embedding page gets.

A decision, not a view: no request and no Flask globals, so a test calls `final_view`
with a `Finished` and the options and reads the answer. The routes only render it
(`templates/widget/_<state>.html`, the event through `_event.html`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.config import DEFAULT_CUSTOMER_CLAIMS
from app.rules import customer_wording as messages
from app.rules.verifications import FinalStatus, Finished
from app.widget.options import WidgetOptions

# Every state the widget draws, in the order a customer may meet them; one partial each.
STATES = ("idle", "requesting", "awaiting", "verifying", "success", "declined", "error")


@dataclass(frozen=True)
class StateView:
    """A state to draw: its partial's name, what the partial reads, and the event for the parent page.

    `event` is None when nobody may receive it: the widget is not inside an allowed embed.
    """

    state: str
    context: dict[str, Any]
    event: dict[str, Any] | None


def final_view(finished: Finished, options: WidgetOptions,
               customer_claims: Iterable[str] = DEFAULT_CUSTOMER_CLAIMS) -> StateView:
    """Success (with the claims when the verdict is approve), or declined with words the customer may read,
    and its event. `customer_claims`: the permissions whose claims the screen shows (`PASSID_CUSTOMER_CLAIMS`)."""
    embedded = bool(options.parent_origin)
    if finished.status == FinalStatus.COMPLETED:
        claims = finished.claims or {}
        event = {
            "type": "passid:success",
            "claims": claims,
            "resultId": finished.result_id,
            **({"requestId": finished.request_id} if finished.request_id else {"token": finished.token}),
        }
        # The event is the guide's onSuccess(claims), the same for every verdict: it carries no verdict, and
        # the bank's page asks its own backend for it. The screen says "Verified" only on an approve.
        shown = messages.customer_claims(claims, customer_claims)
        return StateView("success", {"claims": shown, "lines": messages.claim_lines(shown),
                                     "approved": finished.approved},
                         event if embedded else None)
    if finished.status == FinalStatus.DENIED:
        # No deny reason reaches the customer's browser in any form: the page and its event would tell a
        # customer who opens the developer tools that they matched a sanctions list (tipping-off). The
        # customer reads friendly words (neutral ones for a sanctions match); the institution's server
        # reads the real reason by result id (`/api/results/<id>`).
        return StateView(
            "declined",
            {
                "message": messages.deny_message(finished.deny_reason, options.institution_name),
                "expired": False,
                "qr": False,
            },
            {"type": "passid:decline", "reason": "denied", "resultId": finished.result_id} if embedded else None,
        )
    # A QR request that ended without a share: declined in the app, or its code ran out.
    expired = finished.status == FinalStatus.EXPIRED
    return StateView(
        "declined",
        {"message": messages.request_end_message(finished.status), "expired": expired, "qr": True},
        {
            "type": "passid:decline",
            "reason": "Request expired" if expired else "Request declined",
            "resultId": finished.result_id,
        }
        if embedded else None,
    )
