"""Where the hosted page sends the customer back, and what the link may carry.

The return URL is chosen by the institution's server, but a session id is a capability and the
link is followed by a browser: so it must be http(s) on an origin the institution already trusts
(PASSID_ALLOWED_EMBED_ORIGINS), never `javascript:` or a stranger's site. "Continue" adds
`session=<id>` to its query and nothing else, "Cancel and return" `session=<id>&status=cancelled`: no
claims, token or reason travel in a URL, the bank's server asks `GET /api/sessions/<id>` for those.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_LENGTH = 2048


class UnusableReturnUrl(ValueError):
    """A return URL we will not send a customer to; the message says why, for the integrator."""


def checked_return_url(raw: str, allowed_origins: Iterable[str]) -> str:
    if len(raw) > MAX_LENGTH:
        raise UnusableReturnUrl(f"must be at most {MAX_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise UnusableReturnUrl("must not contain spaces or control characters")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnusableReturnUrl("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UnusableReturnUrl("must not carry a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise UnusableReturnUrl("has an invalid port") from None
    default = 443 if parts.scheme == "https" else 80
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port and port != default else "")
    if origin not in {o.lower() for o in allowed_origins}:
        raise UnusableReturnUrl(f"origin {origin} is not in PASSID_ALLOWED_EMBED_ORIGINS")
    return raw


def continue_url(return_url: str, session_id: str) -> str:
    """`return_url` with `session=<id>` in its query (replacing any session it named already)."""
    return _with_query(return_url, session=session_id)


def cancelled_url(return_url: str, session_id: str) -> str:
    """Where "Cancel and return" leads: `return_url` with `session=<id>&status=cancelled`, nothing else. The status
    only saves the bank's page a call to show its own words at once; its server still asks the API, which
    says the same (`cancelled`), since anyone can type a query string."""
    return _with_query(return_url, session=session_id, status="cancelled")


def _with_query(return_url: str, **added: str) -> str:
    parts = urlsplit(return_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in added]
    query.extend(added.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
