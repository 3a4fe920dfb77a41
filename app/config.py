"""Every setting the app reads from its environment, read and checked in one place.

Why one place: a mistyped variable should stop the app at start-up with a
sentence saying what is wrong, not surface later as a 500 in front of a
customer. `.env` is read for local use only; real environment variables win.

Why a table: `Settings` declares each setting once (its variable, parser with
bounds, default and Flask key), and `load_settings` reads every row in one loop,
so a new setting cannot be validated in one place and forgotten in another.
"""

from __future__ import annotations

import base64
import math
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.passid.claims import CLAIM_FIELDS
from app.plumbing.file_modes import private_directory, write_private_file_once
from app.plumbing.outbound_targets import RefusedTarget, TargetPolicy, refusal_without_lookup

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The default home of the generated secret key and the SQLite database; PASSID_INSTANCE_DIR moves it.
INSTANCE_DIR = PROJECT_ROOT / "instance"

# The contract's seven permissions, in its order (the client package owns that knowledge).
ALL_PERMISSIONS: tuple[str, ...] = tuple(CLAIM_FIELDS)
DEFAULT_THEME_PRIMARY = "#00c27a"
COLOR_SCHEMES = ("auto", "light", "dark")
THEME_RADII = ("square", "small", "medium", "large", "round")
THEME_FONTS = ("system", "sans-serif", "serif", "rounded", "inherit")
LOCALES = ("en", "fr", "de", "es", "pt", "it", "nl", "pl", "sw", "ar")  # app.plumbing.i18n reads these
# Bounds of a server-created session's life (POST /api/sessions ttlSeconds, PASSID_SESSION_TTL_SECONDS):
# long enough for one QR request (at most an hour) and retries, short enough that an old link is dead by tomorrow.
SESSION_TTL_MIN_SECONDS = 60
SESSION_TTL_MAX_SECONDS = 86400
DEFAULT_RETRY_SCHEDULE = (0.0, 30.0, 300.0, 1800.0, 7200.0)
# Not an environment setting: a larger body is refused before any view reads it.
MAX_CONTENT_LENGTH = 1024 * 1024
# PASSID's webhook bodies: no event comes near it (app/webhooks/routes.py refuses a larger one first).
MAX_WEBHOOK_BODY = 256 * 1024
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_RATE = re.compile(r"^\d{1,6}\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_PASSWORD_HASH = re.compile(r"^(scrypt|pbkdf2:sha256:[1-9][0-9]{0,7})$")
_HOST_NAME = re.compile(r"^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_LISTENS_ON_LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "")


class ConfigError(ValueError):
    """Raised at start-up with every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("Configuration problems:\n- " + "\n- ".join(problems))


# 4 is gunicorn's "app failed to load": it stops instead of restarting the worker forever. Any other
# server, and the shell, only need it to be non-zero.
CONFIG_ERROR_EXIT_STATUS = 4

T = TypeVar("T")


# Parsers. Each turns one variable's text into a value and, when it cannot, adds a sentence naming the
# variable to `problems` and returns a stand-in, so the loop goes on and every problem is reported at once.


class Parser(Generic[T]):
    """The column of the table that says how a variable is read and which values are allowed."""

    def unset(self, raw: str) -> bool:
        """Whether `raw` counts as not set, so the row's default is read instead (blank, for optional lists)."""
        return False

    def parse(self, raw: str, variable: str, problems: list[str]) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Parser[float]):
    minimum: float
    maximum: float

    def parse(self, raw: str, variable: str, problems: list[str]) -> float:
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{variable} must be a number, got {raw!r}")
            return self.minimum
        if not self.minimum <= value <= self.maximum:
            problems.append(f"{variable} must be between {self.minimum:g} and {self.maximum:g}, got {raw!r}")
        return value


@dataclass(frozen=True)
class WholeNumber(Parser[int]):
    """A count or a number of seconds; a fraction is cut off ("5.7" reads as 5), as it always was."""

    minimum: int
    maximum: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> int:
        value = Number(self.minimum, self.maximum).parse(raw, variable, problems)
        # nan and inf are reported out of bounds above; turning them into an int would raise instead.
        return int(value) if math.isfinite(value) else self.minimum


@dataclass(frozen=True)
class Flag(Parser[bool]):
    def parse(self, raw: str, variable: str, problems: list[str]) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        problems.append(f"{variable} must be true or false, got {raw!r}")
        return False


@dataclass(frozen=True)
class Text(Parser[str | None]):
    """A string, optionally matching `pattern`; blank is None when `optional` (set it later, or go without).

    `quote=False` for a secret: the sentence must not copy it into a service log.
    """

    pattern: re.Pattern[str] | None = None
    must: str = ""
    optional: bool = False
    quote: bool = True
    strip: bool = True
    trim: str = ""  # trailing characters dropped, e.g. the "/" after a base URL

    def parse(self, raw: str, variable: str, problems: list[str]) -> str | None:
        value = raw.strip().rstrip(self.trim) if self.strip else raw
        if self.optional and not value:
            return None
        if self.pattern is not None and not self.pattern.match(value):
            problems.append(f"{variable} {self.must}" + (f", got {value!r}" if self.quote else ""))
        return value


@dataclass(frozen=True)
class Name(Parser[str]):
    longest: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if not 1 <= len(value) <= self.longest:
            problems.append(f"{variable} must be 1–{self.longest} characters")
        return value


@dataclass(frozen=True)
class RateLimit(Parser[str]):
    example: str = "10 per minute"

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if not _RATE.match(value):
            problems.append(f"{variable} must look like {self.example!r}, got {value!r}")
        return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Items(Parser[tuple[str, ...]]):
    """Comma-separated entries, each matching `pattern` when there is one."""

    pattern: re.Pattern[str] | None = None
    must: str = ""

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        items = _list(raw)
        if self.pattern is not None:
            problems.extend(f"{variable} entry {item!r} {self.must}" for item in items
                            if not self.pattern.match(item))
        return items


@dataclass(frozen=True)
class HostNames(Parser[tuple[str, ...] | None]):
    """PASSID_TRUSTED_HOSTS: None when blank, so `_trusted_hosts` derives the list from HOST or the public URL."""

    entries: Items

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...] | None:
        return self.entries.parse(raw, variable, problems) if raw.strip() else None


@dataclass(frozen=True)
class Choices(Parser[tuple[str, ...]]):
    """Comma-separated picks from `choices`; no pick at all reads the default."""

    choices: tuple[str, ...]
    noun: str

    def unset(self, raw: str) -> bool:
        return not _list(raw)

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        picked = _list(raw)
        unknown = [item for item in picked if item not in self.choices]
        if unknown:
            problems.append(f"{variable} has unknown {self.noun}(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(self.choices)}")
        return picked


@dataclass(frozen=True)
class BarSeparatedNames(Parser[tuple[str, ...]]):
    """PASSID_INSTITUTION_NAMES: the other names an embed may show.

    A bar, not a comma, because names hold commas ("Acme Lending, Ltd"). Each 1–80
    characters with no control characters, like PASSID_INSTITUTION_NAME.
    """

    longest: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        names: list[str] = []
        for item in raw.split("|"):
            name = item.strip()
            if not name:
                continue
            if len(name) > self.longest or any(ord(c) < 32 or ord(c) == 127 for c in name):
                problems.append(f"{variable} entry {name[:40]!r} must be 1–{self.longest} characters with no "
                                "control characters (separate names with |)")
            elif name not in names:
                names.append(name)
        return tuple(names)


@dataclass(frozen=True)
class Schedule(Parser[tuple[float, ...]]):
    """Comma-separated seconds, none negative; blank reads the default."""

    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[float, ...]:
        try:
            schedule = tuple(float(s) for s in raw.split(","))
        except ValueError:
            schedule = ()
        # nan and inf parse as floats but no delivery can wait for them; a week is past any retry schedule.
        if not schedule or any(not 0 <= s <= 7 * 24 * 3600 for s in schedule):
            problems.append(f"{variable} must be comma-separated seconds, e.g. 0,30,300,1800,7200")
            return DEFAULT_RETRY_SCHEDULE
        return schedule


@dataclass(frozen=True)
class RateLimitStorage(Parser[str]):
    """`database`: counters in the app's own database, shared by every process (app/plumbing/rate_limit_storage.py)."""

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if value in ("database", "database://"):
            return "database://"
        if not re.match(r"^(memory|redis|rediss|memcached|mongodb)://", value):
            problems.append(
                f"{variable} must be database (the app's own database), memory:// "
                "or a redis:// (or memcached://) address"  # not quoted back: an address may hold a password
            )
        return value


@dataclass(frozen=True)
class DataKeys(Parser[tuple[str, ...]]):
    """PASSID_DATA_KEY: Fernet keys, newest first, comma-separated; never quoted back (they are secrets)."""

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        keys = _list(raw)
        for number, key in enumerate(keys, start=1):
            if not _is_fernet_key(key):
                problems.append(f"{variable} key {number} of {len(keys)} is not a Fernet key (44 characters of "
                                "URL-safe base64; make one with `python -c \"from cryptography.fernet import "
                                "Fernet; print(Fernet.generate_key().decode())\"`)")
        return keys


def _is_fernet_key(key: str) -> bool:
    """32 bytes in URL-safe base64, as Fernet reads a key (checked here without importing cryptography)."""
    try:
        return len(key) == 44 and len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        return False


@dataclass(frozen=True)
class Directory(Parser[Path]):
    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> Path:
        return Path(raw.strip())


def _one_of(choices: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("^(" + "|".join(re.escape(choice) for choice in choices) + ")$")


LOGO_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml", ".webp": "image/webp", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg"}
LOGO_MAX_BYTES = 100_000


class LogoFile(Parser[Path | None]):
    """PASSID_LOGO_PATH: an image file this app can read, small enough to sit in every first visit's budget."""

    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> Path | None:
        if not raw.strip():
            return None
        path = Path(raw.strip())
        if path.suffix.lower() not in LOGO_SUFFIXES:
            problems.append(f"{variable} must be a {', '.join(sorted(LOGO_SUFFIXES))} file, got {str(path)!r}")
        elif not path.is_file():
            problems.append(f"{variable} names no readable file: {str(path)!r}")
        elif path.stat().st_size > LOGO_MAX_BYTES:
            size = path.stat().st_size
            problems.append(f"{variable} must be at most {LOGO_MAX_BYTES // 1000} KB, got {size:,} bytes")
        return path


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
    theme_primary: str = setting(
        "PASSID_THEME_PRIMARY", Text(_HEX_COLOUR, "must be a hex colour like #00c27a"), DEFAULT_THEME_PRIMARY)
    # The look beyond one colour: each from a safe list, so no value can inject CSS.
    theme_color_scheme: str = setting(
        "PASSID_THEME_COLOR_SCHEME", Text(_one_of(COLOR_SCHEMES), f"must be one of {', '.join(COLOR_SCHEMES)}"),
        "auto")
    theme_radius: str = setting(
        "PASSID_THEME_RADIUS", Text(_one_of(THEME_RADII), f"must be one of {', '.join(THEME_RADII)}"), "medium")
    theme_font: str = setting(
        "PASSID_THEME_FONT", Text(_one_of(THEME_FONTS), f"must be one of {', '.join(THEME_FONTS)}"), "system")
    # The institution's logo: a file on this server, served by the app (no third-party URL; CSP stays strict).
    logo_path: Path | None = setting("PASSID_LOGO_PATH", LogoFile(), "")
    default_locale: str = setting(
        "PASSID_DEFAULT_LOCALE", Text(_one_of(LOCALES), f"must be one of {', '.join(LOCALES)}"), "en")
    # Layout tests only: `?locale=en-XA` lengthens and accents every string (app/pseudo_locale.py).
    pseudo_locale: bool = setting("PASSID_PSEUDO_LOCALE", Flag(), "false")
    allowed_embed_origins: tuple[str, ...] = setting(
        "PASSID_ALLOWED_EMBED_ORIGINS", Items(_ORIGIN, "must be scheme://host[:port]"))
    webhook_retry_schedule: tuple[float, ...] = setting(
        "PASSID_WEBHOOK_RETRY_SCHEDULE", Schedule(), ",".join(f"{s:g}" for s in DEFAULT_RETRY_SCHEDULE),
        flask="SANDBOX_WEBHOOK_RETRY_SCHEDULE")
    institution_name: str = setting("PASSID_INSTITUTION_NAME", Name(80), "Demo Bank")
    passid_timeout_seconds: float = setting("PASSID_TIMEOUT_SECONDS", Number(0.1, 60), "10")
    webhook_timeout_seconds: float = setting(
        "PASSID_WEBHOOK_TIMEOUT_SECONDS", Number(0.1, 60), "10", flask="SANDBOX_WEBHOOK_TIMEOUT_SECONDS")
    request_ttl_seconds: int = setting("PASSID_REQUEST_TTL_SECONDS", WholeNumber(1, 3600), "600")
    branch_reset_seconds: int = setting("PASSID_BRANCH_RESET_SECONDS", WholeNumber(1, 3600), "60")
    # With webhooks on, how often a pending poll asks PASSID itself (0: every poll).
    poll_check_seconds: float = setting("PASSID_POLL_CHECK_SECONDS", Number(0, 60), "7")
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
    rate_limit_sessions: str = setting("PASSID_RATE_LIMIT_SESSIONS", RateLimit(), "10 per minute")
    rate_limit_tokens: str = setting("PASSID_RATE_LIMIT_TOKENS", RateLimit(), "20 per minute")
    rate_limit_sign_in: str = setting("PASSID_RATE_LIMIT_SIGN_IN", RateLimit(), "10 per minute")
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

    @property
    def embedded_sandbox(self) -> bool:
        """True when the app talks to the sandbox it serves itself."""
        return self.sandbox_enabled and self.passid_base_url is None

    @property
    def public_base_url(self) -> str:
        """Where this app is reached: PASSID_PUBLIC_URL behind a load balancer, else HOST:PORT."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

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
            "PASSID_BASE_URL": self.passid_base_url or f"{self.public_base_url}/sandbox",
            # Flask answers 400 to a Host (or trusted X-Forwarded-Host) not on this list.
            "TRUSTED_HOSTS": list(self.trusted_hosts) or None,
            "SESSION_COOKIE_SECURE": self.trusted_proxies > 0 or self.secure_cookies,
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


def _default_database_url(instance_dir: Path = INSTANCE_DIR) -> str:
    private_directory(instance_dir)
    return f"sqlite:///{instance_dir / 'passid.db'}"


def _local_secret(name: str, instance_dir: Path = INSTANCE_DIR) -> str:
    """A random secret kept in instance/ so dev restarts keep sessions and JWTs valid.

    Production sets SECRET_KEY; this only saves a first-time user one step. The file is
    created owner-only (never readable for a moment by others) and tightened if found looser.
    """
    private_directory(instance_dir)
    path = instance_dir / name
    write_private_file_once(path, secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret) < 32:  # emptied or cut short (a crash mid-write, a hand edit): never sign with it
        path.unlink(missing_ok=True)
        write_private_file_once(path, secrets.token_urlsafe(48))
        secret = path.read_text().strip()
    return secret


DATA_KEY_FILE = "data_key"


def _local_data_key(instance_dir: Path) -> str:
    """The embedded sandbox's data key, generated once into instance/data_key (0600).

    Two processes starting at once end up with the same key (the file is linked into place once).
    Unlike the secret key it is never replaced: data encrypted under it would be lost, so a damaged
    file is an error to fix by hand.
    """
    private_directory(instance_dir)
    path = instance_dir / DATA_KEY_FILE
    write_private_file_once(path, base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii"))
    return path.read_text().strip()


def _check_data_key(values: Mapping[str, Any], problems: list[str]) -> None:
    """Against a real PASSID the key must be given: generating one beside the data would protect nothing."""
    if not values["data_keys"] and values["passid_base_url"]:
        problems.append("PASSID_DATA_KEY is required when PASSID_BASE_URL points at a PASSID server: it encrypts "
                        "claims, tokens and webhook bodies in the database (make one with `python -c \"from "
                        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`)")


def _check_decrypt_only_keys(values: Mapping[str, Any], problems: list[str]) -> None:
    """A key either encrypts (PASSID_DATA_KEY) or only decrypts: listed in both, which one the operator meant
    cannot be told, so the start stops rather than guess."""
    decrypt_only = values["data_keys_decrypt_only"]
    for number, key in enumerate(decrypt_only, start=1):
        if key in values["data_keys"]:
            problems.append(f"PASSID_DATA_KEYS_DECRYPT_ONLY key {number} of {len(decrypt_only)} is also in "
                            "PASSID_DATA_KEY: list a key in one of them only (PASSID_DATA_KEY's first key "
                            "encrypts; a decrypt-only key only reads)")


def _check_lease(values: Mapping[str, Any], problems: list[str]) -> None:
    """A lease that lapses while its attempt still runs lets a second pass send the same delivery again.

    One delivery attempt takes at most a connect (up to 5 s) and a read of PASSID_WEBHOOK_TIMEOUT_SECONDS.
    """
    if values["job_lease_seconds"] <= 2 * values["webhook_timeout_seconds"]:
        problems.append("PASSID_JOB_LEASE_SECONDS must be more than twice PASSID_WEBHOOK_TIMEOUT_SECONDS, got "
                        f"{values['job_lease_seconds']:g} and {values['webhook_timeout_seconds']:g}")


def _check_passid_connection(values: Mapping[str, Any], problems: list[str]) -> None:
    """A live (or hosted sandbox) PASSID needs its key; with neither it nor the embedded sandbox, nothing answers."""
    if values["passid_base_url"] and not values["passid_api_key"]:
        problems.append("PASSID_API_KEY is required when PASSID_BASE_URL points at a PASSID server")
    if not values["passid_base_url"] and not values["sandbox_enabled"]:
        problems.append("set PASSID_BASE_URL and PASSID_API_KEY, or leave PASSID_SANDBOX_ENABLED on")


NOTIFY_SECRET_MIN_LENGTH = 16


def _check_notify(values: Mapping[str, Any], problems: list[str]) -> None:
    """The bank's notification URL follows the rules of every outbound call: https in a live configuration,
    no private or loopback address unless a developer allows it (checked here for an address written in the
    URL; a name is checked at every delivery, as it may resolve elsewhere by then), and signed, always.

    The sentences never quote a secret: they end up in a service log.
    """
    url, secrets_ = values["notify_url"], values["notify_secrets"]
    short = [number for number, secret in enumerate(secrets_, start=1) if len(secret) < NOTIFY_SECRET_MIN_LENGTH]
    if short:
        problems.append(f"PASSID_NOTIFY_SECRET entries must be at least {NOTIFY_SECRET_MIN_LENGTH} characters long: "
                        f"entry {', '.join(map(str, short))} of {len(secrets_)} is shorter")
    development = values["notify_allow_private_targets"]
    if development and (values["passid_api_key"] or "").startswith("sk_live_"):
        problems.append("PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS is for development: it cannot be on with a live "
                        "PASSID_API_KEY (sk_live_…)")
    if not url:
        return
    if not secrets_:
        problems.append("PASSID_NOTIFY_SECRET is required when PASSID_NOTIFY_URL is set: every notification is "
                        "signed (comma-separated for rotation, newest first)")
    embedded = values["sandbox_enabled"] and not values["passid_base_url"]
    policy = TargetPolicy.for_notifications(embedded_sandbox=embedded, development=development)
    try:
        refusal_without_lookup(url, policy)
    except RefusedTarget as refused:
        detail = str(refused).removeprefix("url ").rstrip(".")
        if refused.short == "not https":
            detail += " (http:// only with the embedded sandbox or PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS)"
        problems.append(f"PASSID_NOTIFY_URL {detail}")


def _trusted_hosts(listed: tuple[str, ...] | None, host: str, public_url: str | None,
                   problems: list[str]) -> tuple[str, ...]:
    """The host names requests may carry (Flask's TRUSTED_HOSTS); others get a 400.

    PASSID_TRUSTED_HOSTS (comma-separated names, `.bank.example` for every subdomain) when
    set. Otherwise the public URL's host, or HOST's, plus 127.0.0.1 and localhost when the
    app listens on loopback (or on every address, which includes it). IPv6 literals cannot
    be listed: Werkzeug 3.1 cuts a trusted name at its first colon, so none would ever match.
    """
    if listed is not None:
        return listed
    hosts: list[str] = []
    own = urlsplit(public_url).hostname if public_url else host.strip()
    if own and ":" not in own and own not in ("0.0.0.0", ""):
        hosts.append(own)
    if host.strip() in _LISTENS_ON_LOOPBACK or host.strip().startswith("127."):
        hosts.extend(name for name in _LOOPBACK_HOSTS if name not in hosts)
    if not hosts:  # an empty list would switch Flask's host check off altogether
        problems.append(f"PASSID_TRUSTED_HOSTS must name this app's host names: none can be derived from "
                        f"HOST={host.strip()!r} without PASSID_PUBLIC_URL")
    return tuple(hosts)


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv_path: Path | None = None
) -> Settings:
    """Read settings from `environ` (default: os.environ over `.env`) and validate them all."""
    if environ is None:
        dotenv_file = dotenv_path or PROJECT_ROOT / ".env"
        env: dict[str, str] = {
            k: v for k, v in dotenv_values(dotenv_file).items() if v is not None
        } if dotenv_file.exists() else {}
        env.update(os.environ)
    else:
        env = dict(environ)
    problems: list[str] = []
    values = {name: row.read(env, problems) for name, row in SETTINGS.items()}
    _check_passid_connection(values, problems)
    _check_data_key(values, problems)
    _check_decrypt_only_keys(values, problems)
    _check_lease(values, problems)
    _check_notify(values, problems)
    values["trusted_hosts"] = _trusted_hosts(values["trusted_hosts"], values["host"], values["public_url"],
                                             problems)
    if problems:
        raise ConfigError(problems)

    # Only now, with nothing wrong: the defaults that write files into the instance folder.
    instance_dir = values["instance_dir"]
    values["secret_key"] = values["secret_key"] or _local_secret("secret_key", instance_dir)
    values["database_url"] = values["database_url"] or _default_database_url(instance_dir)
    values["sandbox_jwt_secret"] = values["sandbox_jwt_secret"] or f"sandbox-jwt:{values['secret_key']}"
    if not values["data_keys"]:
        key = _local_data_key(instance_dir)
        if not _is_fernet_key(key):
            raise ConfigError([f"{instance_dir / DATA_KEY_FILE} does not hold a Fernet key: restore it from a "
                               "backup (the data stored under it cannot be read without it), or set "
                               "PASSID_DATA_KEY"])
        values["data_keys"] = (key,)
    return Settings(**values)


def config_error_sentences(error: ConfigError) -> list[str]:
    """One line per problem, as an operator reads it on the terminal or in a service log."""
    return [f"Configuration error: {problem.rstrip('.')}." for problem in error.problems]


def load_settings_or_exit() -> Settings:
    """The process environment's settings, or one sentence per problem on stderr and a non-zero exit.

    For entry points an operator starts (`wsgi.py` under any server, the `flask` CLI): a
    traceback there buries the one line that says what to fix. No traceback, no half-started app.
    """
    try:
        return load_settings()
    except ConfigError as error:
        exit_with(error)


def exit_with(error: ConfigError) -> NoReturn:
    """Print one sentence per problem on stderr and exit non-zero: how an operator's entry point stops."""
    print("\n".join(config_error_sentences(error)), file=sys.stderr, flush=True)
    raise SystemExit(CONFIG_ERROR_EXIT_STATUS) from None
