"""Where a sandbox webhook may be sent: http(s), to a loopback or a public address, nowhere else.

Why: whoever holds a sandbox key (in the sandbox, anyone who onboards) chooses the webhook URL,
the sandbox POSTs to it, and the delivery log reports the answer's status. The checks themselves
(every resolved address judged, the delivery pinned to the address checked) are the app's one
set, in app/plumbing/outbound_targets.py; this module is the sandbox's policy over them.

Loopback stays allowed: the demo institution's receiver is this app itself on 127.0.0.1, and a
sandbox only exists on a developer's machine (a live configuration has none).
"""

from __future__ import annotations

from app.plumbing.outbound_targets import SANDBOX_POLICY, RefusedTarget, WebhookTarget, resolve_target

__all__ = ["SANDBOX_POLICY", "RefusedTarget", "WebhookTarget", "resolve_webhook_target"]


def resolve_webhook_target(url: str) -> WebhookTarget:
    """Check a sandbox webhook URL (public or loopback addresses) and resolve its host once."""
    return resolve_target(url, SANDBOX_POLICY)
