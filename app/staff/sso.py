"""Staff single sign-on through the bank's OpenID Connect provider, by Authlib.

Authlib does the protocol, not this module: discovery, the authorisation code flow with PKCE (S256), `state`
and `nonce` kept in the signed session cookie, the code exchanged at the token endpoint with the client's
secret, the ID token's signature checked against the keys the provider publishes (fetched again when a key id
is new) and its claims validated (`iss`, `aud`, `exp`, `iat`, `nonce`, `at_hash`). What it leaves to the caller
is here: that discovery names the issuer we were told (no provider mix-up) and sends us to https endpoints,
where the role comes from, whether the provider checked a second factor, and every failure as a typed error
a page can word.

Every call to the provider has a timeout; the client is built once per app, and discovery and the keys are
kept by Authlib after the first answer.

Authlib (with joserfc and its crypto) is imported only where single sign-on is configured (`init_sso`, and the
functions below that only such an app reaches): an app without it does not carry its 2 MB in every worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app, request, url_for
from werkzeug.wrappers import Response

from app.config import current_settings, settings_of
from app.plumbing.outbound_targets import loopback_host
from app.staff.roles import Role

log = logging.getLogger(__name__)

EXTENSION = "passid_sso"
CLIENT_NAME = "bank"
# (connect, read) seconds for discovery, the keys, the token endpoint and UserInfo: a provider that hangs
# holds one worker thread this long at most, then the person reads that it did not answer.
PROVIDER_TIMEOUT = (5.0, 10.0)
# Clock skew allowed on the ID token's times (Authlib's default is 120 s).
ID_TOKEN_LEEWAY_SECONDS = 60
CALLBACK_PATH = "/staff/sso/callback"

# RFC 8176's authentication method references, by factor. Two factors of different kinds, or `mfa`, mean
# the provider checked a second factor; `pop`, `rba`, `geo`, `wia` and the like say nothing about factors.
_KNOWLEDGE = frozenset({"pwd", "pin", "kba"})
_POSSESSION = frozenset({"otp", "hwk", "swk", "sms", "tel", "sc"})
_INHERENCE = frozenset({"fpt", "face", "iris", "retina", "vbm"})
_ROLE_RANK = {Role.COUNTER: 0, Role.ANALYST: 1, Role.ADMIN: 2}


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered something that is not OpenID Connect (a page says "try later")."""


class SignInRejected(Exception):
    """The provider's answer did not prove who this is: a `state` not started in this browser, a code refused,
    an ID token whose signature or claims fail, or the provider's own refusal. `str()` is for the audit log."""


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in, and what the bank's claim says about their role."""

    issuer: str
    subject: str  # `sub`: the provider's identifier for this person, never reassigned
    name: str  # what staff read: preferred_username, else email, else sub
    role_values: tuple[str, ...]  # the role claim's values, as the provider sent them
    second_factor: bool  # `amr` or `acr` says the provider checked a second factor
    # The ID token's `amr` and `acr` as sent (those present), for a second-factor step that reads them itself.
    method_claims: Mapping[str, Any] = field(default_factory=dict)


def init_sso(app: Flask) -> None:
    """Register the bank's provider with Authlib when single sign-on is configured (nothing is fetched yet)."""
    settings = settings_of(app)
    if not settings.single_sign_on:
        return
    from authlib.integrations.flask_client import OAuth

    issuer = settings.oidc_issuer or ""
    oauth = OAuth(app)
    client = oauth.register(
        CLIENT_NAME,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=discovery_url(issuer),
        client_kwargs={
            "scope": settings.oidc_scopes,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": PROVIDER_TIMEOUT,
        },
    )
    app.extensions[EXTENSION] = client


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0, section 4: the issuer without its trailing slash, then the well-known path."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def _client() -> Any:
    return current_app.extensions[EXTENSION]


def redirect_uri() -> str:
    """Where the provider sends the browser back: the URL to register with it.

    PASSID_PUBLIC_URL's origin when set (behind a load balancer, the address the bank registered), else this
    request's own origin (its host is one PASSID_TRUSTED_HOSTS allows, and behind a trusted proxy, the proxy's).
    """
    public = current_settings().public_url
    return f"{public}{CALLBACK_PATH}" if public else url_for("staff.sso_callback", _external=True)


def authorization_redirect() -> Response:
    """The redirect that starts a sign-in at the provider, with a new `state`, `nonce` and PKCE verifier."""
    from authlib.common.errors import AuthlibBaseError

    client = _client()
    checked_metadata(client)
    try:
        response: Response = client.authorize_redirect(redirect_uri())
    except (requests.RequestException, ValueError, AuthlibBaseError) as error:
        raise ProviderUnavailable(f"could not start: {type(error).__name__}") from None
    return response


def identity_from_callback() -> ProviderIdentity:
    """Who the provider's answer on this request proves signed in; the errors above otherwise."""
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.base_client import MismatchingStateError
    from joserfc.errors import JoseError

    client = _client()
    if request.args.get("error"):  # the provider refused (the person cancelled, or is not allowed in)
        raise SignInRejected(f"the provider answered {request.args['error'][:60]!r}")
    metadata = checked_metadata(client)
    settings = current_settings()
    # OpenID Connect Core 3.1.3.7: `aud` must contain our client id. Authlib alone accepts a token for another
    # audience that names us in `azp`; these options make its registry check both the issuer and the audience.
    claims_options = {"iss": {"essential": True, "values": [settings.oidc_issuer]},
                      "aud": {"essential": True, "values": [settings.oidc_client_id]}}
    try:
        token = client.authorize_access_token(leeway=ID_TOKEN_LEEWAY_SECONDS, claims_options=claims_options)
    except MismatchingStateError:
        raise SignInRejected("the state did not match a sign-in started in this browser") from None
    except (requests.ConnectionError, requests.Timeout) as error:
        raise ProviderUnavailable(f"token endpoint: {type(error).__name__}") from None
    except AuthlibBaseError as error:  # the token endpoint's refusal: a code used twice, expired or not ours
        raise SignInRejected(f"the provider refused the code ({getattr(error, 'error', 'error')})") from None
    except JoseError as error:  # the ID token: signature, issuer, audience, expiry, nonce …
        raise SignInRejected(f"the ID token failed its check ({type(error).__name__}: {error})") from None
    except (requests.RequestException, ValueError) as error:
        raise ProviderUnavailable(f"token endpoint answered nonsense: {type(error).__name__}") from None
    claims = token.get("userinfo")
    if not claims:
        raise SignInRejected("the provider's answer held no ID token")
    values = claim_values(claims, settings.oidc_role_claim)
    about = dict(claims)
    if values is None and metadata.get("userinfo_endpoint"):
        info = _userinfo(client, token, str(claims["sub"]))
        values = claim_values(info, settings.oidc_role_claim)
        about = {**info, **claims}  # the ID token's own claims win
    return ProviderIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        name=display_name(about),
        role_values=values or (),
        second_factor=second_factor_from(claims, settings.oidc_mfa_acr_values),
        method_claims={key: claims[key] for key in ("amr", "acr") if key in claims},
    )


def checked_metadata(client: Any) -> Mapping[str, Any]:
    """The discovery document, fetched once and kept; raises ProviderUnavailable when it cannot be used.

    Authlib trusts whatever the document says; here the issuer must be the one configured (OpenID Connect
    Discovery, section 4.3: otherwise one provider could pose as another) and every endpoint https (or
    loopback http, where a test's provider runs), so the code, the secret and the tokens never travel in clear.
    """
    try:
        metadata: Mapping[str, Any] = client.load_server_metadata()
    except (requests.RequestException, ValueError) as error:
        raise ProviderUnavailable(f"discovery: {type(error).__name__}") from None
    issuer = current_settings().oidc_issuer
    problem = metadata_problem(metadata, issuer or "")
    if problem:
        client.server_metadata.pop("_loaded_at", None)  # ask again next time: the provider may be fixed
        raise ProviderUnavailable(problem)
    return metadata


def metadata_problem(metadata: Mapping[str, Any], issuer: str) -> str | None:
    """Why this discovery document cannot be used for `issuer`, or None."""
    if metadata.get("issuer") != issuer:
        return "discovery names another issuer"
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        url = metadata.get(name)
        if not isinstance(url, str) or not url:
            return f"discovery has no {name}"
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback_host(parts.hostname)):
            return f"discovery's {name} is not https"
    return None


def _userinfo(client: Any, token: Mapping[str, Any], subject: str) -> Mapping[str, Any]:
    """UserInfo's claims, when the ID token does not carry the role claim (many providers send groups only there).

    OpenID Connect Core 5.3.2: UserInfo's `sub` must be the ID token's, or the answer is not about this person.
    """
    from authlib.common.errors import AuthlibBaseError

    try:
        info = client.userinfo(token=token)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise ProviderUnavailable(f"userinfo: {type(error).__name__}") from None
    except (requests.RequestException, ValueError, AuthlibBaseError) as error:
        raise SignInRejected(f"UserInfo refused ({type(error).__name__})") from None
    if str(info.get("sub")) != subject:
        raise SignInRejected("UserInfo answered about another subject")
    return dict(info)


def claim_values(claims: Mapping[str, Any], claim: str) -> tuple[str, ...] | None:
    """The claim's values as strings: a list as it is, one string as one value; None when the claim is absent.

    A name with dots is looked up as written first (`https://bank.example/roles`), then as a path into
    nested objects (Keycloak's `realm_access.roles`).
    """
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if isinstance(item, str | int))
    return ()


def role_for(values: Iterable[str], role_map: Mapping[str, str]) -> Role | None:
    """The highest role any of `values` maps to, or None: no mapped value, no access."""
    roles = [Role(role_map[value]) for value in values if value in role_map]
    return max(roles, key=_ROLE_RANK.__getitem__) if roles else None


def second_factor_from(claims: Mapping[str, Any], mfa_acr_values: Iterable[str] = ()) -> bool:
    """Whether the ID token says the provider checked more than one factor.

    `amr` (RFC 8176) with `mfa`, or methods of two different kinds (something known, held or been); or an `acr`
    the bank listed in PASSID_OIDC_MFA_ACR_VALUES (Keycloak's levels, Okta's `urn:okta:loa:2fa:any`).
    """
    amr = claims.get("amr")
    methods = {method for method in amr if isinstance(method, str)} if isinstance(amr, list) else set()
    if "mfa" in methods:
        return True
    kinds = sum(bool(methods & kind) for kind in (_KNOWLEDGE, _POSSESSION, _INHERENCE))
    if kinds >= 2:
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in set(mfa_acr_values)


def display_name(claims: Mapping[str, Any]) -> str:
    """The name staff read for this person: preferred_username, else email, else the subject."""
    for key in ("preferred_username", "email"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return str(claims["sub"])
