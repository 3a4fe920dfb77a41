"""HTTP client for the PASSID bridge API (see shared/spec/passid-api.md).

One private `_request` does transport, the version check and error mapping, so
every endpoint method is just "build the body, call, parse". Callers only ever
see `PassidError` subclasses, never a `requests` exception or a KeyError.

Two hooks let the code that owns a client watch it without this package knowing
that code: `observe(endpoint, outcome, seconds)` hears of every endpoint call (its
method's name, one word for how it ended, and how long it took), and
`extra_headers()` adds headers to every call (the caller's request id, say). An
error's message names the endpoint's path with its ids left out, so a log line
that quotes it holds no request id, code or token.

Transport: a `requests` session per client, with one retry for a kept-alive
connection the server had closed (idempotent calls only) and no redirects.
Proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are read
from the environment once, when the client is built, for its base URL, and used
for every call (`trust_env` is off, so neither they nor ~/.netrc are read again
at each call). GETs without a proxy, the widget's status checks above all,
skip `requests`' per-call work and go through the same session's urllib3
connection pool and retry rule directly (`_get`), mapping failures as for the
rest: a status check costs about half the CPU it did.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from . import types as api_types
from .errors import (
    ApiVersionMismatch,
    MalformedResponse,
    PassidAPIError,
    PassidBusy,
    PassidError,
    PassidTimeout,
    PassidUnavailable,
    RateLimited,
    ServerError,
    Unauthorized,
    error_class_for,
)
from .types import (
    BridgeRequest,
    CohortReport,
    OnboardResult,
    Outcome,
    OutcomeReceipt,
    Permission,
    PublicRequest,
    RequestDetails,
    RequestUpdate,
    ShareToken,
    VerifyResult,
    WebhookConfig,
    WebhookDelivery,
)

API_VERSION = "1"
DEFAULT_BASE_URL = "https://api.passid.io"
DEFAULT_USER_AGENT = "passid-python-client/1"

Timeout = float | tuple[float, float]
# `observe(endpoint, outcome, seconds)`: told of each endpoint call once it ends (see `outcome_of`).
Observer = Callable[[str, str, float], None]
# `extra_headers()`: headers added to every call, asked for at each call.
ExtraHeaders = Callable[[], Mapping[str, str]]

# The words `observe` hears as an outcome: a short fixed list, so a metric labelled with it stays small.
OUTCOMES = ("ok", "client_error", "unauthorized", "rate_limited", "server_error", "timeout", "unavailable",
            "busy", "malformed", "error")
# The path segments that carry an id, code or token, as an error message shows them instead.
_ID_SEGMENTS = re.compile(r"(/api/bridge/(?:request/code|request|share))/[^/?]+")
_URL_IN_ERROR = re.compile(r"(with url: )(\S+)")


def outcome_of(error: BaseException | None) -> str:
    """One word for how a call ended, from what it raised (None: it returned)."""
    if error is None:
        return "ok"
    if isinstance(error, PassidBusy):
        return "busy"
    if isinstance(error, PassidTimeout):
        return "timeout"
    if isinstance(error, PassidUnavailable):
        return "unavailable"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, Unauthorized):
        return "unauthorized"
    if isinstance(error, ServerError):
        return "server_error"
    if isinstance(error, PassidAPIError):
        return "client_error"
    if isinstance(error, MalformedResponse | ApiVersionMismatch):
        return "malformed"
    return "error"


def shown_path(path: str) -> str:
    """`path` as an error message may show it: `/api/bridge/request/{id}/public`, never the id itself."""
    return _ID_SEGMENTS.sub(r"\1/{id}", path)


P = ParamSpec("P")
R = TypeVar("R")


def _observed(method: Callable[Concatenate[PassidClient, P], R]) -> Callable[Concatenate[PassidClient, P], R]:
    """Tell the client's observer how this endpoint call ended and how long it took (named as the method)."""
    endpoint = method.__name__

    @functools.wraps(method)
    def call(self: PassidClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._observe is None:
            return method(self, *args, **kwargs)
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            return method(self, *args, **kwargs)
        except BaseException as error:
            failure = error
            raise
        finally:
            self._observe(endpoint, outcome_of(failure), time.perf_counter() - started)

    return call


@dataclass(frozen=True)
class _Answer:
    payload: object
    headers: Mapping[str, str]


def _segment(value: str) -> str:
    """Quote one path segment; '.'/'..' would be collapsed by URL normalisation and hit another endpoint."""
    if value in ("", ".", ".."):
        raise ValueError(f"invalid path segment {value!r}")
    return quote(value, safe="")


def _values(items: Iterable[str | Enum] | None, name: str) -> list[str] | None:
    # A bare string is iterable too; "full_score" must not become ["f", "u", ...].
    if isinstance(items, str):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    if items is None:
        return None
    return [item.value if isinstance(item, Enum) else item for item in items]


def _compact(**fields: Any) -> dict[str, Any]:
    """Drop unset fields so the server applies its documented defaults."""
    return {key: value for key, value in fields.items() if value is not None}


def _date_param(value: date | str | None) -> str | None:
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, date) else value


def _retry_after(header: str | None) -> float | None:
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _without_url(error: Exception) -> str:
    """urllib3's text names the URL it tried ("… with url: /api/bridge/request/req_…"): its path is shown
    without its ids, as the message's own."""
    return _URL_IN_ERROR.sub(lambda found: found.group(1) + shown_path(found.group(2)), str(error))


def _api_error(status: int, reason: str | None, headers: Mapping[str, str], content: bytes) -> PassidAPIError:
    """Map an error answer by status; tolerate bodies that are not the contract's error shape."""
    try:
        body = api_types.decode_json(content)
    except MalformedResponse:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, message, field = (
        error.get(k) if isinstance(error.get(k), str) else None for k in ("code", "message", "field")
    )
    if not message:
        message = f"HTTP {status} {reason or ''}".strip()
    cls = error_class_for(status)
    if cls is RateLimited:
        return RateLimited(status, code, message, field, retry_after=_retry_after(headers.get("Retry-After")))
    return cls(status, code, message, field)


class _RetryStaleConnection(Retry):
    """One more try for a connection that failed before or while being reused.

    A kept-alive connection the server had already closed fails on reuse
    (RemoteDisconnected); idempotent calls (GET, PUT, DELETE) are sent again
    once. Never after a read timeout: a slow PASSID would then cost two.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _urllib3_timeout(timeout: Timeout) -> urllib3.Timeout:
    """requests' (connect, read) or single number, as urllib3 takes it."""
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(connect=timeout, read=timeout)


def _new_session(base_url: str) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(
        max_retries=_RetryStaleConnection(
            total=1, connect=1, read=1, status=0, other=0, redirect=0,
            raise_on_status=False, respect_retry_after_header=False,
        )
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Proxy settings (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) are read from the environment once,
    # when the client is built, for its base URL, not on every call: re-reading them (and ~/.netrc) was a
    # seventh of a poll's CPU. A proxy the environment names at start-up is used for every call.
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.trust_env = False
    return session


def _direct_pool(session: requests.Session, base_url: str) -> HTTPConnectionPool | None:
    """The urllib3 pool `session` sends `base_url`'s calls through, for GETs sent without `requests`; None
    when a proxy applies to it (those calls stay with `requests`, which speaks to proxies)."""
    if requests.utils.select_proxy(base_url, session.proxies):
        return None
    adapter = session.get_adapter(base_url)
    if not isinstance(adapter, HTTPAdapter):
        return None
    # The very pool `requests` picks for this URL with certificates verified (its CA bundle, its pool key),
    # so both ways of sending share connections and check TLS alike.
    return adapter.get_connection_with_tls_context(requests.Request("GET", base_url).prepare(), verify=True)


class PassidClient:
    """Client for one PASSID base URL (live or an embedded sandbox).

    `api_key` is the institution key; calls made on behalf of the customer's
    app take a user JWT argument instead, and public calls need neither.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: Timeout = (3.05, 10.0),
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        in_flight: threading.Semaphore | None = None,
        observe: Observer | None = None,
        extra_headers: ExtraHeaders | None = None,
    ) -> None:
        """`in_flight`, shared by the clients of one process, caps its calls waiting on PASSID at once
        (a bulkhead): past the cap a call raises `PassidBusy` without being sent. `observe` hears how each
        endpoint call ended; `extra_headers` adds headers to every call (see the module's docstring)."""
        self.base_url = base_url.rstrip("/")
        self._observe = observe
        self._extra_headers = extra_headers
        self._in_flight = in_flight
        self.timeout = timeout
        self.user_agent = user_agent
        self._api_key = api_key
        self._owns_session = session is None
        self._session = session if session is not None else _new_session(self.base_url)
        # GETs (the widget's status checks above all) skip `requests`' per-call work (merging settings,
        # preparing, cookies: two thirds of a call's CPU) and go straight to its urllib3 pool, with its retry
        # rule; only for a session built here, without a proxy (`_direct_pool`).
        self._pool = _direct_pool(self._session, self.base_url) if self._owns_session else None
        adapter = self._session.get_adapter(self.base_url) if self._pool is not None else None
        self._retries = adapter.max_retries if isinstance(adapter, HTTPAdapter) else None
        self._pool_timeout = _urllib3_timeout(timeout)
        self._base_path = urlsplit(self.base_url).path  # the pool takes the target from the host on ("/sandbox/…")

    def __repr__(self) -> str:
        return f"PassidClient({self.base_url!r}, api_key={'set' if self._api_key else None})"

    def close(self) -> None:
        """Close the session, but only one this client created."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> _Answer:
        """Send one call; `auth` adds the institution key when the client has one.

        A keyed call without a key is still sent: the server's 401 (raised as
        Unauthorized) is the one answer for "no key", whoever forgot it.
        """
        what = f"{method} {shown_path(path)}"
        send = {"Accept": "application/json", "User-Agent": self.user_agent}
        if self._extra_headers is not None:
            send.update(self._extra_headers())
        if auth and self._api_key:
            send["X-Institution-Key"] = self._api_key
        send.update(headers or {})
        if self._in_flight is not None and not self._in_flight.acquire(blocking=False):
            raise PassidBusy(f"{what}: not sent, too many calls to PASSID already waiting")
        try:
            if self._pool is not None and method == "GET":
                status, reason, answer_headers, content = self._get(what, path, params, send)
            else:
                status, reason, answer_headers, content = self._send(what, method, path, json, params, send)
        finally:
            if self._in_flight is not None:
                self._in_flight.release()

        version = answer_headers.get("X-PASSID-API-Version")
        # A 5xx without the header came from a gateway in front of PASSID; calling
        # that a version mismatch would hide a transient, retryable failure.
        if not (version is None and status >= 500) and (version or "").strip() != API_VERSION:
            raise ApiVersionMismatch(version, status)
        if not 200 <= status < 300:
            raise _api_error(status, reason, answer_headers, content)
        return _Answer(api_types.decode_json(content), answer_headers)

    def _get(self, what: str, path: str, params: Mapping[str, str] | None,
             headers: dict[str, str]) -> tuple[int, str | None, Mapping[str, str], bytes]:
        """A GET through the session's urllib3 pool; failures mapped as `_send` maps `requests`' own."""
        assert self._pool is not None
        url = self._base_path + path + ("?" + urlencode(params) if params else "")
        try:
            response = self._pool.urlopen("GET", url, headers=headers, retries=self._retries,
                                          timeout=self._pool_timeout, redirect=False, preload_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            # No answer in time (connect or read); urllib3 counts a refused connection (NewConnectionError) as a
            # connect timeout too, requests does not.
            if (isinstance(cause, urllib3.exceptions.TimeoutError)
                    and not isinstance(cause, urllib3.exceptions.NewConnectionError)):
                raise PassidTimeout(f"{what}: no answer within {self.timeout}s") from exc
            raise self._unreachable(what, exc) from exc
        try:
            content = response.read()
        except urllib3.exceptions.TimeoutError as exc:
            raise PassidTimeout(f"{what}: answer stalled beyond {self.timeout}s") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise PassidUnavailable(f"{what}: answer was cut off: {_without_url(exc)}") from exc
        finally:
            response.release_conn()
        return response.status, response.reason, response.headers, content

    def _unreachable(self, what: str, error: Exception) -> PassidUnavailable:
        return PassidUnavailable(f"{what}: cannot reach PASSID at {self.base_url}: {_without_url(error)}")

    def _send(self, what: str, method: str, path: str, json: Any, params: Mapping[str, str] | None,
              headers: dict[str, str]) -> tuple[int, str | None, Mapping[str, str], bytes]:
        """One call through `requests` (calls with a body, a session given to the client, a proxy)."""
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=self.timeout,
                # requests would forward X-Institution-Key to a redirect target
                # on another host; the contract has no redirects, so none are followed.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise PassidTimeout(f"{what}: no answer within {self.timeout}s") from exc
        except requests.ConnectionError as exc:
            # A stall while reading the body surfaces as ConnectionError(ReadTimeoutError).
            if any(isinstance(arg, ReadTimeoutError) for arg in exc.args):
                raise PassidTimeout(f"{what}: answer stalled beyond {self.timeout}s") from exc
            raise self._unreachable(what, exc) from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise PassidUnavailable(f"{what}: answer was cut off: {_without_url(exc)}") from exc
        except requests.RequestException as exc:
            raise PassidError(f"{what}: {_without_url(exc)}") from exc
        return response.status_code, response.reason, response.headers, response.content

    @staticmethod
    def _bearer(user_jwt: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {user_jwt}"}

    # --- workspace ----------------------------------------------------------

    @_observed
    def onboard(self, institution_name: str) -> OnboardResult:
        answer = self._request("POST", "/api/onboard", json={"institutionName": institution_name}, auth=False)
        return api_types.parse_onboard(answer.payload)

    @_observed
    def set_webhook(self, url: str, secret: str) -> WebhookConfig:
        answer = self._request("PUT", "/api/institution/webhook", json={"url": url, "secret": secret})
        return api_types.parse_webhook_config(answer.payload)

    @_observed
    def get_webhook(self) -> WebhookConfig:
        return api_types.parse_webhook_config(self._request("GET", "/api/institution/webhook").payload)

    @_observed
    def send_test_webhook(self) -> str:
        """Returns the event id of the sample `verification.completed` sent."""
        return api_types.parse_event_id(self._request("POST", "/api/institution/webhook/test").payload)

    @_observed
    def list_webhook_deliveries(self) -> list[WebhookDelivery]:
        return api_types.parse_deliveries(self._request("GET", "/api/institution/webhook/deliveries").payload)

    # --- bridge requests (QR flow) -------------------------------------------

    @_observed
    def create_request(
        self,
        *,
        institution_name: str | None = None,
        permissions: Iterable[Permission | str] | None = None,
        ttl_seconds: int | None = None,
    ) -> BridgeRequest:
        body = _compact(
            institutionName=institution_name,
            permissions=_values(permissions, "permissions"),
            ttlSeconds=ttl_seconds,
        )
        return api_types.parse_bridge_request(self._request("POST", "/api/bridge/request", json=body).payload)

    @_observed
    def get_request(self, request_id: str) -> RequestDetails:
        answer = self._request("GET", f"/api/bridge/request/{_segment(request_id)}")
        return api_types.parse_request_details(answer.payload)

    @_observed
    def get_public_request(self, request_id: str) -> PublicRequest:
        """Raises RequestGone (code REQUEST_EXPIRED/COMPLETED/DECLINED) once not pending."""
        answer = self._request("GET", f"/api/bridge/request/{_segment(request_id)}/public", auth=False)
        return api_types.parse_public_request(answer.payload)

    @_observed
    def get_request_by_code(self, code: str) -> PublicRequest:
        answer = self._request("GET", f"/api/bridge/request/code/{_segment(code)}", auth=False)
        return api_types.parse_public_request(answer.payload)

    @_observed
    def fulfill_request(
        self, request_id: str, user_jwt: str, permissions: Iterable[Permission | str] | None = None
    ) -> RequestUpdate:
        answer = self._request(
            "POST",
            f"/api/bridge/request/{_segment(request_id)}/fulfill",
            json=_compact(permissions=_values(permissions, "permissions")),
            headers=self._bearer(user_jwt),
            auth=False,
        )
        return api_types.parse_request_update(answer.payload)

    @_observed
    def decline_request(self, request_id: str, user_jwt: str, reason: str | None = None) -> RequestUpdate:
        answer = self._request(
            "POST",
            f"/api/bridge/request/{_segment(request_id)}/decline",
            json=_compact(reason=reason),
            headers=self._bearer(user_jwt),
            auth=False,
        )
        return api_types.parse_request_update(answer.payload)

    # --- customer side: sandbox login and share tokens -----------------------

    @_observed
    def sandbox_login(self, profile: str) -> str:
        """Returns a short-lived user JWT for one of the sandbox's fixed profiles."""
        answer = self._request("POST", "/api/sandbox/login", json={"profile": profile}, auth=False)
        return api_types.parse_jwt(answer.payload)

    @_observed
    def create_share_token(
        self,
        user_jwt: str,
        institution_id: str,
        *,
        permissions: Iterable[Permission | str] | None = None,
        ttl_seconds: int | None = None,
    ) -> ShareToken:
        body = _compact(
            institutionId=institution_id,
            permissions=_values(permissions, "permissions"),
            ttlSeconds=ttl_seconds,
        )
        answer = self._request("POST", "/api/bridge/share", json=body, headers=self._bearer(user_jwt), auth=False)
        return api_types.parse_share_token(answer.payload)

    @_observed
    def revoke_share_token(self, user_jwt: str, token: str) -> None:
        self._request("DELETE", f"/api/bridge/share/{_segment(token)}", headers=self._bearer(user_jwt), auth=False)

    # --- verify, outcomes, cohorts -------------------------------------------

    @_observed
    def verify(self, token: str, *, idempotency_key: str | None = None) -> VerifyResult:
        """Verify a share token; a deny is returned, not raised.

        Always sends an Idempotency-Key so a retry cannot consume a one-time
        token twice. If this raises, the key sent is on the exception's
        `idempotency_key`: retry with it.
        """
        key = uuid.uuid4().hex if idempotency_key is None else idempotency_key
        try:
            answer = self._request(
                "POST", "/api/bridge/verify", json={"token": token}, headers={"Idempotency-Key": key}
            )
            replayed = answer.headers.get("Idempotent-Replayed", "").strip().lower() == "true"
            return api_types.parse_verify(answer.payload, idempotency_key=key, replayed=replayed)
        except PassidError as exc:
            exc.idempotency_key = key
            raise

    @_observed
    def report_outcome(
        self,
        token: str,
        outcome: Outcome | str,
        product_type: str,
        amount: float,
        *,
        currency: str | None = None,
        notes: str | None = None,
    ) -> OutcomeReceipt:
        body = _compact(
            token=token,
            outcome=outcome.value if isinstance(outcome, Enum) else outcome,
            productType=product_type,
            amount=amount,
            currency=currency,
            notes=notes,
        )
        return api_types.parse_outcome_receipt(self._request("POST", "/api/bridge/outcome", json=body).payload)

    @_observed
    def cohorts(
        self,
        *,
        from_date: date | str | None = None,
        to_date: date | str | None = None,
        product_type: str | None = None,
    ) -> CohortReport:
        params = _compact(**{"from": _date_param(from_date), "to": _date_param(to_date), "productType": product_type})
        return api_types.parse_cohorts(self._request("GET", "/api/bridge/cohorts", params=params).payload)
