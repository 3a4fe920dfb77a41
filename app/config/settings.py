"""The settings table: every setting the app reads, declared once as a field of `Settings`.

Each field's row says its variable, parser with bounds, default and Flask key, and `load_settings`
(app/config/loader.py) reads every row in one loop, so a new setting cannot be validated in one place
and forgotten in another. The constants the rest of the app shares with the table live here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from app.config.parsers import (
    BarSeparatedNames,
    Choices,
    Currency,
    CustomerClaims,
    DataKeys,
    Directory,
    Flag,
    HostNames,
    Items,
    LogoFile,
    Name,
    Number,
    Parser,
    RateLimit,
    RateLimitStorage,
    RoleMap,
    Schedule,
    Text,
    VerdictRuleList,
    WholeNumber,
    one_of,
)
from app.passid.claims import CLAIM_FIELDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The default home of the generated secret key and the SQLite database; PASSID_INSTANCE_DIR moves it.
INSTANCE_DIR = PROJECT_ROOT / "instance"

# The contract's seven permissions, in its order (the client package owns that knowledge).
ALL_PERMISSIONS: tuple[str, ...] = tuple(CLAIM_FIELDS)
# The bank's own assessment of the customer: staff and the API read it, the customer never does.
RISK_ASSESSMENT_PERMISSIONS: tuple[str, ...] = ("fraud_risk", "sanctions_clear")
# What the customer's success screen shows unless PASSID_CUSTOMER_CLAIMS says otherwise: the score badge and tier
# (the guide's success state), income and identity; the other facts about themselves are the bank's to add.
DEFAULT_CUSTOMER_CLAIMS: tuple[str, ...] = ("full_score", "income_verified", "identity_verified")
DEFAULT_THEME_PRIMARY = "#00c27a"
COLOR_SCHEMES = ("auto", "light", "dark")
THEME_RADII = ("square", "small", "medium", "large", "round")
THEME_FONTS = ("system", "sans-serif", "serif", "rounded", "inherit")
# The staff roles, least first (app/staff/roles.py's Role; a test holds the two together).
STAFF_ROLES = ("counter", "analyst", "admin")
LOCALES = ("en", "fr", "de", "es", "pt", "it", "nl", "pl", "sw", "ar")  # app.plumbing.i18n reads these
# Bounds of a server-created session's life (POST /api/sessions ttlSeconds, PASSID_SESSION_TTL_SECONDS):
# long enough for one QR request (at most an hour) and retries, short enough that an old link is dead by tomorrow.
SESSION_TTL_MIN_SECONDS = 60
SESSION_TTL_MAX_SECONDS = 86400
DEFAULT_RETRY_SCHEDULE = (0.0, 30.0, 300.0, 1800.0, 7200.0)
# The app's verdict (app/rules/decision.py): where each finding in the claims leads unless
# PASSID_VERDICT_RULES says otherwise. "approve" for a finding means the bank ignores it.
DEFAULT_VERDICT_RULES: dict[str, str] = {
    "sanctions_not_clear": "decline",
    "fraud_risk_high": "decline",
    "identity_not_verified": "review",
    "fraud_risk_medium": "review",
    "income_not_verified": "review",
    "passid_recommends_review": "review",
    "claim_out_of_contract": "review",
    "tier_below_minimum": "review",
}
VERDICT_OUTCOMES = ("approve", "review", "decline")
TIERS = ("A", "B", "C", "D", "E")  # best first, as PASSID's claims grade them
# Who must pass a second factor to sign in (app/staff/signing_in.py): admins only, every role, or nobody
# (an account that has enrolled a factor is asked for it whatever this says).
STAFF_MFA_POLICIES = ("admin", "all", "off")
# Not an environment setting: a larger body is refused before any view reads it.
MAX_CONTENT_LENGTH = 1024 * 1024
# PASSID's webhook bodies: no event comes near it (app/webhooks/routes.py refuses a larger one first).
MAX_WEBHOOK_BODY = 256 * 1024
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_PASSWORD_HASH = re.compile(r"^(scrypt|pbkdf2:sha256:[1-9][0-9]{0,7})$")
_BEARER_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,}$")
LOG_FORMATS = ("text", "json")
_HOST_NAME = re.compile(r"^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Row:
    """One setting: where it is read from, how, what it is when unset, and where Flask finds it.

    `flask_key` None: not handed to Flask as read (`Settings.to_flask` derives what Flask needs from it).
    """

    variable: str
    parser: Parser[Any]
    default: str
    flask_key: str | None

    def read(self, env: Mapping[str, str], problems: list[str]) -> Any:
        raw = env.get(self.variable)
        if raw is None or self.parser.unset(raw):
            raw = self.default
        return self.parser.parse(raw, self.variable, problems)


_ROW = "config.row"


def setting(variable: str, parser: Parser[Any], default: str = "", *, flask: str | bool = True) -> Any:
    """A `Settings` field read from `variable`; `flask`: True for the same key, a name, or False for none."""
    flask_key = variable if flask is True else (flask or None)
    return field(metadata={_ROW: Row(variable, parser, default, flask_key)})


@dataclass(frozen=True)
class Settings:
    """The validated configuration, one row per environment variable; `to_flask()` hands it to Flask.

    A value whose default depends on others (SECRET_KEY, DATABASE_URL, PASSID_SANDBOX_JWT_SECRET,
    PASSID_TRUSTED_HOSTS) is read as None when unset and filled in by `load_settings`.
    """

    host: str = setting("HOST", Text(strip=False), "127.0.0.1", flask=False)
    port: int = setting("PORT", WholeNumber(1, 65535), "5000", flask=False)
    secret_key: str = setting("SECRET_KEY", Text(optional=True))
    database_url: str = setting("DATABASE_URL", Text(optional=True), flask="SQLALCHEMY_DATABASE_URI")
    instance_dir: Path = setting("PASSID_INSTANCE_DIR", Directory(), str(INSTANCE_DIR), flask=False)
    passid_base_url: str | None = setting(
        "PASSID_BASE_URL", Text(re.compile(r"^https?://"), "must start with http:// or https://", optional=True,
                                trim="/"), flask=False)
    passid_api_key: str | None = setting(
        "PASSID_API_KEY", Text(re.compile(r"^sk_(sandbox|live)_[A-Za-z0-9_-]{16,}$"),
                               "must look like sk_sandbox_… or sk_live_…", optional=True, quote=False))
    sandbox_enabled: bool = setting("PASSID_SANDBOX_ENABLED", Flag(), "true", flask="SANDBOX_ENABLED")
    permissions: tuple[str, ...] = setting(
        "PASSID_PERMISSIONS", Choices(ALL_PERMISSIONS, "permission"), ",".join(ALL_PERMISSIONS))
    # The claim lines the customer's own success screen shows (app/rules/customer_wording.py).
    customer_claims: tuple[str, ...] = setting(
        "PASSID_CUSTOMER_CLAIMS",
        CustomerClaims(tuple(p for p in ALL_PERMISSIONS if p not in RISK_ASSESSMENT_PERMISSIONS), "permission",
                       RISK_ASSESSMENT_PERMISSIONS),
        ",".join(DEFAULT_CUSTOMER_CLAIMS))
    theme_primary: str = setting(
        "PASSID_THEME_PRIMARY", Text(_HEX_COLOUR, "must be a hex colour like #00c27a"), DEFAULT_THEME_PRIMARY)
    # The look beyond one colour: each from a safe list, so no value can inject CSS.
    theme_color_scheme: str = setting(
        "PASSID_THEME_COLOR_SCHEME", Text(one_of(COLOR_SCHEMES), f"must be one of {', '.join(COLOR_SCHEMES)}"),
        "auto")
    theme_radius: str = setting(
        "PASSID_THEME_RADIUS", Text(one_of(THEME_RADII), f"must be one of {', '.join(THEME_RADII)}"), "medium")
    theme_font: str = setting(
        "PASSID_THEME_FONT", Text(one_of(THEME_FONTS), f"must be one of {', '.join(THEME_FONTS)}"), "system")
    # The institution's logo: a file on this server, served by the app (no third-party URL; CSP stays strict).
    logo_path: Path | None = setting("PASSID_LOGO_PATH", LogoFile(), "")
    default_locale: str = setting(
        "PASSID_DEFAULT_LOCALE", Text(one_of(LOCALES), f"must be one of {', '.join(LOCALES)}"), "en")
    # Layout tests only: `?locale=en-XA` lengthens and accents every string (app/pseudo_locale.py).
    pseudo_locale: bool = setting("PASSID_PSEUDO_LOCALE", Flag(), "false")
    allowed_embed_origins: tuple[str, ...] = setting(
        "PASSID_ALLOWED_EMBED_ORIGINS", Items(_ORIGIN, "must be scheme://host[:port]"))
    webhook_retry_schedule: tuple[float, ...] = setting(
        "PASSID_WEBHOOK_RETRY_SCHEDULE", Schedule(DEFAULT_RETRY_SCHEDULE),
        ",".join(f"{s:g}" for s in DEFAULT_RETRY_SCHEDULE), flask="SANDBOX_WEBHOOK_RETRY_SCHEDULE")
    # The app's own verdict on each verification (app/rules/decision.py).
    verdict_rules: dict[str, str] = setting(
        "PASSID_VERDICT_RULES", VerdictRuleList(tuple(DEFAULT_VERDICT_RULES), VERDICT_OUTCOMES))
    minimum_tier: str | None = setting(
        "PASSID_MINIMUM_TIER", Text(one_of(TIERS), f"must be one of {', '.join(TIERS)} (or unset)", optional=True))
    institution_name: str = setting("PASSID_INSTITUTION_NAME", Name(80), "Demo Bank")
    passid_timeout_seconds: float = setting("PASSID_TIMEOUT_SECONDS", Number(0.1, 60), "10")
    webhook_timeout_seconds: float = setting(
        "PASSID_WEBHOOK_TIMEOUT_SECONDS", Number(0.1, 60), "10", flask="SANDBOX_WEBHOOK_TIMEOUT_SECONDS")
    request_ttl_seconds: int = setting("PASSID_REQUEST_TTL_SECONDS", WholeNumber(1, 3600), "600")
    # The outcome form's currency until staff type another (set once by the bank; app/console/forms.py, the CLI).
    default_currency: str = setting("PASSID_DEFAULT_CURRENCY", Currency(), "USD")
    branch_reset_seconds: int = setting("PASSID_BRANCH_RESET_SECONDS", WholeNumber(1, 3600), "60")
    # With webhooks on, how often a pending poll asks PASSID itself: one check window per this many seconds,
    # three polls (app/widget/polling.py); at most the 3 s window: every poll.
    poll_check_seconds: float = setting("PASSID_POLL_CHECK_SECONDS", Number(0, 60), "7.5")
    # Per process: a slow PASSID may hold this many threads, never all of them.
    max_calls_in_flight: int = setting("PASSID_MAX_CALLS_IN_FLIGHT", WholeNumber(1, 1000), "4")
    # Per process: webhooks, and customers' forms, reading a body at once (each class its own; staff forms,
    # the API and the rest one each), so slow bodies or a flood in one class hold a few threads, never all.
    max_bodies_in_flight: int = setting("PASSID_MAX_BODIES_IN_FLIGHT", WholeNumber(1, 1000), "2")
    # How long a request with a body waits for a slot of its class before it is answered 503.
    body_slot_wait_seconds: float = setting("PASSID_BODY_SLOT_WAIT_SECONDS", Number(0, 10), "1")
    # Tests lower this to see expiry in seconds; the contract's floor is 60.
    sandbox_min_ttl_seconds: int = setting(
        "PASSID_SANDBOX_MIN_TTL_SECONDS", WholeNumber(1, 60), "60", flask="SANDBOX_MIN_TTL_SECONDS")
    background_jobs: bool = setting("PASSID_BACKGROUND_JOBS", Flag(), "true", flask="BACKGROUND_JOBS")
    job_interval_seconds: float = setting(
        "PASSID_JOB_INTERVAL_SECONDS", Number(0.05, 60), "1", flask="JOB_INTERVAL_SECONDS")
    # How long a pass's claim on a row (a webhook to handle, a sandbox delivery to send) holds: after a crash
    # mid-row, another pass takes the row once it lapses. Longer than one attempt can take (_check_lease).
    job_lease_seconds: float = setting(
        "PASSID_JOB_LEASE_SECONDS", Number(1, 3600), "60", flask="JOB_LEASE_SECONDS")
    # Werkzeug's method for staff password hashes. scrypt is production's; tests name a cheap pbkdf2, since
    # the hundreds of accounts they make would otherwise spend most of a minute hashing.
    password_hash: str = setting(
        "PASSID_PASSWORD_HASH", Text(_PASSWORD_HASH, "must be scrypt, or pbkdf2:sha256:ITERATIONS"), "scrypt")
    # Staff single sign-on (app/staff/sso.py): the bank's OpenID Connect provider, found by discovery under
    # its issuer URL; https, or http on a loopback address only (a provider on this very machine, as the tests
    # start one). Kept out of Flask's config, the secret above all. Checked together by _check_sso.
    oidc_issuer: str | None = setting(
        "PASSID_OIDC_ISSUER", Text(re.compile(r"^https?://[^/\s?#]+"), "must be the provider's https:// issuer URL",
                                   optional=True), flask=False)
    oidc_client_id: str | None = setting("PASSID_OIDC_CLIENT_ID", Text(optional=True), flask=False)
    oidc_client_secret: str | None = setting(
        "PASSID_OIDC_CLIENT_SECRET", Text(optional=True, quote=False), flask=False)
    # Space-separated, as OpenID Connect writes them; `openid` is required. Some providers send the role claim
    # only for a scope of its own (Okta's `groups`).
    oidc_scopes: str = setting(
        "PASSID_OIDC_SCOPES", Text(re.compile(r"^[\x21-\x7e]+( [\x21-\x7e]+)*$"),
                                   "must be scopes separated by single spaces"), "openid profile email",
        flask=False)
    # Which claim of the ID token (or the UserInfo answer) carries the role, and which of its values gives which
    # role (`passid-admins=admin;passid-analysts=analyst;branch-staff=counter`); a user with none is refused.
    oidc_role_claim: str = setting("PASSID_OIDC_ROLE_CLAIM", Name(200), "groups", flask=False)
    oidc_role_map: dict[str, str] = setting("PASSID_OIDC_ROLE_MAP", RoleMap(STAFF_ROLES), flask=False)
    # `acr` values by which this provider says it checked a second factor (an `amr` of `mfa`, or a password
    # and a possession or inherence method, says so by itself).
    oidc_mfa_acr_values: tuple[str, ...] = setting("PASSID_OIDC_MFA_ACR_VALUES", Items(), flask=False)
    # off: with single sign-on, only the break-glass account (`flask staff break-glass`) signs in with a password.
    local_passwords: bool = setting("PASSID_LOCAL_PASSWORDS", Flag(), "on", flask=False)
    rate_limit_sessions: str = setting("PASSID_RATE_LIMIT_SESSIONS", RateLimit(), "10 per minute")
    rate_limit_tokens: str = setting("PASSID_RATE_LIMIT_TOKENS", RateLimit(), "20 per minute")
    rate_limit_sign_in: str = setting("PASSID_RATE_LIMIT_SIGN_IN", RateLimit(), "10 per minute")
    # Second-factor codes and passkey answers at sign-in, per client address (each account also locks after
    # a run of wrong codes: app/staff/factors.py).
    rate_limit_second_factor: str = setting("PASSID_RATE_LIMIT_SECOND_FACTOR", RateLimit(), "10 per minute")
    staff_mfa: str = setting(
        "PASSID_STAFF_MFA", Text(one_of(STAFF_MFA_POLICIES), f"must be one of {', '.join(STAFF_MFA_POLICIES)}"),
        "admin")
    # With single sign-on: whether a second factor the bank's provider says it checked (its ID token's `amr`, or
    # an `acr` of PASSID_OIDC_MFA_ACR_VALUES) stands for ours; off, ours is asked after the provider's sign-in too.
    staff_mfa_from_provider: bool = setting("PASSID_STAFF_MFA_FROM_PROVIDER", Flag(), "on", flask=False)
    # Webhook calls that fail their signature check, per client address; valid deliveries never count.
    rate_limit_webhook_failures: str = setting("PASSID_RATE_LIMIT_WEBHOOK_FAILURES", RateLimit(), "30 per minute")
    # Onboarding on the embedded sandbox needs no credentials: per client address, it is limited.
    sandbox_rate_limit_onboard: str = setting(
        "PASSID_SANDBOX_RATE_LIMIT_ONBOARD", RateLimit("20 per hour"), "20 per hour",
        flask="SANDBOX_RATE_LIMIT_ONBOARD")
    rate_limit_storage: str = setting("PASSID_RATE_LIMIT_STORAGE", RateLimitStorage(), "database")
    # Behind a TLS-terminating proxy: how many hops of X-Forwarded-* to believe.
    trusted_proxies: int = setting("PASSID_TRUSTED_PROXIES", WholeNumber(0, 5), "0")
    # How long a webhook about a token verify waits for the widget's own record of it.
    webhook_grace_seconds: float = setting("PASSID_WEBHOOK_GRACE_SECONDS", Number(0, 3600), "30")
    secure_cookies: bool = setting("PASSID_SECURE_COOKIES", Flag(), "false", flask=False)
    public_url: str | None = setting(
        "PASSID_PUBLIC_URL", Text(_ORIGIN, "must be scheme://host[:port]", optional=True, trim="/"))
    institution_names: tuple[str, ...] = setting("PASSID_INSTITUTION_NAMES", BarSeparatedNames(80))
    # After a final state, how long a widget's handle still shows the result: a handle is a bearer credential.
    result_view_seconds: int = setting("PASSID_RESULT_VIEW_SECONDS", WholeNumber(1, 3600), "300")
    # How long a session created by POST /api/sessions stays open when the request names no ttlSeconds.
    session_ttl_seconds: int = setting(
        "PASSID_SESSION_TTL_SECONDS", WholeNumber(SESSION_TTL_MIN_SECONDS, SESSION_TTL_MAX_SECONDS), "3600")
    # How long claims, tokens, codes and webhook bodies are kept before the daily purge erases them
    # (app/rules/retention.py).
    retention_days: int = setting("PASSID_RETENTION_DAYS", WholeNumber(1, 3650), "90")
    trusted_hosts: tuple[str, ...] = setting(
        "PASSID_TRUSTED_HOSTS", HostNames(Items(_HOST_NAME, "must be a host name such as verify.bank.example or "
                                                ".bank.example (no scheme, port or path)")), flask=False)
    passid_webhook_secrets: tuple[str, ...] = setting(
        "PASSID_WEBHOOK_SECRET", Items(), flask="PASSID_WEBHOOK_SECRETS")
    sandbox_jwt_secret: str = setting("PASSID_SANDBOX_JWT_SECRET", Text(optional=True), flask="SANDBOX_JWT_SECRET")
    # Signed events to the bank's backend (app/rules/notifications.py), on PASSID_WEBHOOK_RETRY_SCHEDULE and
    # PASSID_WEBHOOK_TIMEOUT_SECONDS: where (checked by _check_notify), and the secrets, newest first (the first
    # signs; the receiver accepts any). The switch lets a developer's private or loopback receiver, over http,
    # take them outside the embedded sandbox (which allows loopback by itself).
    notify_url: str | None = setting(
        "PASSID_NOTIFY_URL", Text(re.compile(r"^https?://[^/\s]+"), "must be an http:// or https:// URL",
                                  optional=True))
    notify_secrets: tuple[str, ...] = setting("PASSID_NOTIFY_SECRET", Items(), flask="PASSID_NOTIFY_SECRETS")
    notify_allow_private_targets: bool = setting("PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS", Flag(), "false")
    # Encrypts claims, tokens, codes and webhook bodies at rest (app/plumbing/encryption.py); kept out of
    # Flask's config.
    data_keys: tuple[str, ...] = setting("PASSID_DATA_KEY", DataKeys(), flask=False)
    # Keys that only decrypt (and find by their hashes): a rotation's new key before every server has it, then
    # the old one until `rotate-data-key` has run.
    data_keys_decrypt_only: tuple[str, ...] = setting("PASSID_DATA_KEYS_DECRYPT_ONLY", DataKeys(), flask=False)
    # Operations (app/health.py): `/metrics` answers only a request bearing this token (404 while it is unset);
    # a token's characters, at least 16 of them, so a scraper's header can carry it as it is.
    metrics_token: str | None = setting(
        "PASSID_METRICS_TOKEN", Text(_BEARER_TOKEN, "must be at least 16 letters, digits or ._~+/=-", optional=True,
                                     quote=False), flask=False)
    # `json`: one JSON object per log line, with the request id (app/plumbing/log_format.py).
    log_format: str = setting(
        "PASSID_LOG_FORMAT", Text(one_of(LOG_FORMATS), f"must be one of {', '.join(LOG_FORMATS)}"), "text",
        flask=False)

    @property
    def embedded_sandbox(self) -> bool:
        """True when the app talks to the sandbox it serves itself."""
        return self.sandbox_enabled and self.passid_base_url is None

    @property
    def single_sign_on(self) -> bool:
        """True when staff may sign in through the bank's OpenID Connect provider."""
        return self.oidc_issuer is not None

    @property
    def public_base_url(self) -> str:
        """Where this app is reached: PASSID_PUBLIC_URL behind a load balancer, else HOST:PORT."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def passid_url(self) -> str:
        """Where the PASSID client calls: PASSID_BASE_URL, or the embedded sandbox under this app's own address."""
        return self.passid_base_url or f"{self.public_base_url}/sandbox"

    @property
    def session_cookie_secure(self) -> bool:
        """Cookies only over HTTPS: behind a TLS-terminating proxy, or when PASSID_SECURE_COOKIES says so."""
        return self.trusted_proxies > 0 or self.secure_cookies

    @property
    def max_content_length(self) -> int:
        return MAX_CONTENT_LENGTH

    def to_flask(self) -> dict[str, object]:
        """Flask's view of the settings, UPPER_CASE as Flask extensions expect."""
        config: dict[str, object] = {
            row.flask_key: getattr(self, name) for name, row in SETTINGS.items() if row.flask_key
        }
        config.update({
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(self.database_url),
            "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
            "PASSID_BASE_URL": self.passid_url,
            # Flask answers 400 to a Host (or trusted X-Forwarded-Host) not on this list.
            "TRUSTED_HOSTS": list(self.trusted_hosts) or None,
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "PASSID_EMBEDDED_SANDBOX": self.embedded_sandbox,
            "PUBLIC_BASE_URL": self.public_base_url,
            "PASSID_INSTANCE_DIR": str(self.instance_dir),
        })
        return config


# The table: each Settings field and its row, in declaration order (the order problems are reported in).
SETTINGS: dict[str, Row] = {f.name: f.metadata[_ROW] for f in fields(Settings)}


# Connections each app process keeps: one per server thread (8 by default) and the background passes,
# so the pool never opens and closes connections under steady load (see engine_options).
POOL_SIZE = 10
POOL_OVERFLOW = 10


def engine_options(database_url: str) -> dict[str, object]:
    """SQLAlchemy engine options: a pool as large as the threads that use it, and a ping before reuse.

    Why the size: a pool smaller than the threads serving requests closes each connection it cannot
    keep and opens a new one at the next burst; on PostgreSQL that is a new server process each time,
    which made waiting-widget capacity low and different from run to run. `pool_pre_ping` costs one
    round trip per checkout and lets the app ride out a database restart.
    """
    options: dict[str, object] = {"pool_pre_ping": True}
    in_memory = database_url.rstrip("/") in ("sqlite:", "sqlite:/") or any(
        marker in database_url for marker in (":memory:", "mode=memory"))
    if not in_memory:  # an in-memory SQLite database is one connection per thread, with no pool to size
        options.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    return options
