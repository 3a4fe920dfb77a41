"""Every setting the app reads from its environment, read and checked in one place.

Why one place: a mistyped variable should stop the app at start-up with a
sentence saying what is wrong, not surface later as a 500 in front of a
customer. `.env` is read for local use only; real environment variables win.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.file_modes import private_directory, write_private_file_once
from app.passid.claims import CLAIM_FIELDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The default home of the generated secret key and the SQLite database; PASSID_INSTANCE_DIR moves it.
INSTANCE_DIR = PROJECT_ROOT / "instance"

# The contract's seven permissions, in its order (the client package owns that knowledge).
ALL_PERMISSIONS: tuple[str, ...] = tuple(CLAIM_FIELDS)
DEFAULT_THEME_PRIMARY = "#00c27a"
DEFAULT_RETRY_SCHEDULE = (0.0, 30.0, 300.0, 1800.0, 7200.0)
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_RATE = re.compile(r"^\d{1,6}\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?$")


class ConfigError(ValueError):
    """Raised at start-up with every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("Configuration problems:\n- " + "\n- ".join(problems))


# 4 is gunicorn's "app failed to load": it stops instead of restarting the worker forever. Any other
# server, and the shell, only need it to be non-zero.
CONFIG_ERROR_EXIT_STATUS = 4


@dataclass(frozen=True)
class Settings:
    """The validated configuration; `to_flask()` hands it to Flask."""

    host: str = "127.0.0.1"
    port: int = 5000
    secret_key: str = ""
    database_url: str = ""
    passid_base_url: str | None = None
    passid_api_key: str | None = None
    passid_webhook_secrets: tuple[str, ...] = ()
    passid_timeout_seconds: float = 10.0
    institution_name: str = "Demo Bank"
    institution_names: tuple[str, ...] = ()
    result_view_seconds: int = 300
    trusted_hosts: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ALL_PERMISSIONS
    theme_primary: str = DEFAULT_THEME_PRIMARY
    request_ttl_seconds: int = 600
    poll_check_seconds: float = 7.0
    max_calls_in_flight: int = 4
    max_bodies_in_flight: int = 4
    branch_reset_seconds: int = 60
    rate_limit_sessions: str = "10 per minute"
    rate_limit_tokens: str = "20 per minute"
    rate_limit_sign_in: str = "10 per minute"
    # Webhook calls that fail their signature check, per client address; valid deliveries never count.
    rate_limit_webhook_failures: str = "30 per minute"
    rate_limit_storage: str = "database://"
    sandbox_rate_limit_onboard: str = "20 per hour"
    trusted_proxies: int = 0
    webhook_grace_seconds: float = 30.0
    public_url: str | None = None
    secure_cookies: bool = False
    allowed_embed_origins: tuple[str, ...] = ()
    sandbox_enabled: bool = True
    sandbox_jwt_secret: str = ""
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 10.0
    sandbox_min_ttl_seconds: int = 60
    background_jobs: bool = True
    job_interval_seconds: float = 1.0
    max_content_length: int = 1024 * 1024
    instance_dir: Path = INSTANCE_DIR
    extra: dict[str, object] = field(default_factory=dict)

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

    def to_flask(self) -> dict[str, object]:
        """Flask's view of the settings, UPPER_CASE as Flask extensions expect."""
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(self.database_url),
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "PASSID_BASE_URL": self.passid_base_url
            or f"{self.public_base_url}/sandbox",
            "PASSID_API_KEY": self.passid_api_key,
            "PASSID_WEBHOOK_SECRETS": self.passid_webhook_secrets,
            "PASSID_TIMEOUT_SECONDS": self.passid_timeout_seconds,
            "PASSID_INSTITUTION_NAME": self.institution_name,
            "PASSID_INSTITUTION_NAMES": self.institution_names,
            "PASSID_RESULT_VIEW_SECONDS": self.result_view_seconds,
            # Flask answers 400 to a Host (or trusted X-Forwarded-Host) not on this list.
            "TRUSTED_HOSTS": list(self.trusted_hosts) or None,
            "PASSID_PUBLIC_URL": self.public_url,
            "PASSID_PERMISSIONS": self.permissions,
            "PASSID_THEME_PRIMARY": self.theme_primary,
            "PASSID_REQUEST_TTL_SECONDS": self.request_ttl_seconds,
            "PASSID_BRANCH_RESET_SECONDS": self.branch_reset_seconds,
            "PASSID_POLL_CHECK_SECONDS": self.poll_check_seconds,
            "PASSID_MAX_CALLS_IN_FLIGHT": self.max_calls_in_flight,
            "PASSID_MAX_BODIES_IN_FLIGHT": self.max_bodies_in_flight,
            "PASSID_RATE_LIMIT_SESSIONS": self.rate_limit_sessions,
            "PASSID_RATE_LIMIT_TOKENS": self.rate_limit_tokens,
            "PASSID_RATE_LIMIT_SIGN_IN": self.rate_limit_sign_in,
            "PASSID_RATE_LIMIT_WEBHOOK_FAILURES": self.rate_limit_webhook_failures,
            "PASSID_RATE_LIMIT_STORAGE": self.rate_limit_storage,
            "PASSID_TRUSTED_PROXIES": self.trusted_proxies,
            "PASSID_WEBHOOK_GRACE_SECONDS": self.webhook_grace_seconds,
            "SESSION_COOKIE_SECURE": self.trusted_proxies > 0 or self.secure_cookies,
            "PASSID_ALLOWED_EMBED_ORIGINS": self.allowed_embed_origins,
            "PASSID_EMBEDDED_SANDBOX": self.embedded_sandbox,
            "PUBLIC_BASE_URL": self.public_base_url,
            "SANDBOX_ENABLED": self.sandbox_enabled,
            "SANDBOX_JWT_SECRET": self.sandbox_jwt_secret,
            "SANDBOX_WEBHOOK_RETRY_SCHEDULE": self.webhook_retry_schedule,
            "SANDBOX_WEBHOOK_TIMEOUT_SECONDS": self.webhook_timeout_seconds,
            "SANDBOX_MIN_TTL_SECONDS": self.sandbox_min_ttl_seconds,
            "SANDBOX_RATE_LIMIT_ONBOARD": self.sandbox_rate_limit_onboard,
            "BACKGROUND_JOBS": self.background_jobs,
            "JOB_INTERVAL_SECONDS": self.job_interval_seconds,
            "PASSID_INSTANCE_DIR": str(self.instance_dir),
            **self.extra,
        }


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


def _bool(raw: str, name: str, problems: list[str]) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    problems.append(f"{name} must be true or false, got {raw!r}")
    return False


def _number(raw: str, name: str, problems: list[str], *, minimum: float, maximum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return minimum
    if not minimum <= value <= maximum:
        problems.append(f"{name} must be between {minimum:g} and {maximum:g}, got {raw!r}")
    return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _institution_names(raw: str, problems: list[str]) -> tuple[str, ...]:
    """PASSID_INSTITUTION_NAMES: the other names an embed may show, separated by `|`.

    A bar, not a comma, because names hold commas ("Acme Lending, Ltd"). Each 1–80
    characters with no control characters, like PASSID_INSTITUTION_NAME.
    """
    names: list[str] = []
    for item in raw.split("|"):
        name = item.strip()
        if not name:
            continue
        if len(name) > 80 or any(ord(c) < 32 or ord(c) == 127 for c in name):
            problems.append(f"PASSID_INSTITUTION_NAMES entry {name[:40]!r} must be 1–80 characters with no "
                            "control characters (separate names with |)")
        elif name not in names:
            names.append(name)
    return tuple(names)


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_LISTENS_ON_LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "")
_HOST_NAME = re.compile(r"^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _trusted_hosts(raw: str, host: str, public_url: str | None, problems: list[str]) -> tuple[str, ...]:
    """The host names requests may carry (Flask's TRUSTED_HOSTS); others get a 400.

    PASSID_TRUSTED_HOSTS (comma-separated names, `.bank.example` for every subdomain) when
    set. Otherwise the public URL's host, or HOST's, plus 127.0.0.1 and localhost when the
    app listens on loopback (or on every address, which includes it). IPv6 literals cannot
    be listed: Werkzeug 3.1 cuts a trusted name at its first colon, so none would ever match.
    """
    if raw.strip():
        listed = _list(raw)
        for name in listed:
            if not _HOST_NAME.match(name):
                problems.append(f"PASSID_TRUSTED_HOSTS entry {name!r} must be a host name such as "
                                "verify.bank.example or .bank.example (no scheme, port or path)")
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

    port = int(_number(env.get("PORT", "5000"), "PORT", problems, minimum=1, maximum=65535))
    base_url = env.get("PASSID_BASE_URL", "").strip().rstrip("/") or None
    if base_url and not re.match(r"^https?://", base_url):
        problems.append(f"PASSID_BASE_URL must start with http:// or https://, got {base_url!r}")
    api_key = env.get("PASSID_API_KEY", "").strip() or None
    if api_key and not re.match(r"^sk_(sandbox|live)_[A-Za-z0-9_-]{16,}$", api_key):
        problems.append("PASSID_API_KEY must look like sk_sandbox_… or sk_live_…")
    sandbox_enabled = _bool(env.get("PASSID_SANDBOX_ENABLED", "true"), "PASSID_SANDBOX_ENABLED", problems)
    if base_url and not api_key:
        problems.append("PASSID_API_KEY is required when PASSID_BASE_URL points at a PASSID server")
    if not base_url and not sandbox_enabled:
        problems.append("set PASSID_BASE_URL and PASSID_API_KEY, or leave PASSID_SANDBOX_ENABLED on")

    permissions = _list(env.get("PASSID_PERMISSIONS", "")) or ALL_PERMISSIONS
    unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
    if unknown:
        problems.append(
            f"PASSID_PERMISSIONS has unknown permission(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ALL_PERMISSIONS)}"
        )
    theme = env.get("PASSID_THEME_PRIMARY", DEFAULT_THEME_PRIMARY).strip()
    if not _HEX_COLOUR.match(theme):
        problems.append(f"PASSID_THEME_PRIMARY must be a hex colour like #00c27a, got {theme!r}")
    origins = _list(env.get("PASSID_ALLOWED_EMBED_ORIGINS", ""))
    for origin in origins:
        if not re.match(r"^https?://[^/\s]+$", origin):
            problems.append(f"PASSID_ALLOWED_EMBED_ORIGINS entry {origin!r} must be scheme://host[:port]")

    schedule_raw = env.get("PASSID_WEBHOOK_RETRY_SCHEDULE", "")
    schedule = DEFAULT_RETRY_SCHEDULE
    if schedule_raw.strip():
        try:
            schedule = tuple(float(s) for s in schedule_raw.split(","))
            if not schedule or any(s < 0 for s in schedule):
                raise ValueError
        except ValueError:
            problems.append(
                "PASSID_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. 0,30,300,1800,7200"
            )
            schedule = DEFAULT_RETRY_SCHEDULE
    institution_name = env.get("PASSID_INSTITUTION_NAME", "Demo Bank").strip()
    if not 1 <= len(institution_name) <= 80:
        problems.append("PASSID_INSTITUTION_NAME must be 1–80 characters")

    timeout = _number(env.get("PASSID_TIMEOUT_SECONDS", "10"), "PASSID_TIMEOUT_SECONDS",
                      problems, minimum=0.1, maximum=60)
    webhook_timeout = _number(env.get("PASSID_WEBHOOK_TIMEOUT_SECONDS", "10"),
                              "PASSID_WEBHOOK_TIMEOUT_SECONDS", problems, minimum=0.1, maximum=60)
    request_ttl = int(_number(env.get("PASSID_REQUEST_TTL_SECONDS", "600"), "PASSID_REQUEST_TTL_SECONDS",
                              problems, minimum=1, maximum=3600))
    branch_reset = int(_number(env.get("PASSID_BRANCH_RESET_SECONDS", "60"), "PASSID_BRANCH_RESET_SECONDS",
                               problems, minimum=1, maximum=3600))
    # With webhooks on, how often a pending poll asks PASSID itself (0: every poll).
    poll_check = _number(env.get("PASSID_POLL_CHECK_SECONDS", "7"), "PASSID_POLL_CHECK_SECONDS",
                         problems, minimum=0, maximum=60)
    # Per process: a slow PASSID may hold this many threads, never all of them.
    in_flight = int(_number(env.get("PASSID_MAX_CALLS_IN_FLIGHT", "4"), "PASSID_MAX_CALLS_IN_FLIGHT",
                            problems, minimum=1, maximum=1000))
    # Per process: requests reading a body at once, so slow bodies can hold a few threads, never all.
    bodies_in_flight = int(_number(env.get("PASSID_MAX_BODIES_IN_FLIGHT", "4"), "PASSID_MAX_BODIES_IN_FLIGHT",
                                   problems, minimum=1, maximum=1000))
    # Tests lower this to see expiry in seconds; the contract's floor is 60.
    min_ttl = int(_number(env.get("PASSID_SANDBOX_MIN_TTL_SECONDS", "60"), "PASSID_SANDBOX_MIN_TTL_SECONDS",
                          problems, minimum=1, maximum=60))
    background_jobs = _bool(env.get("PASSID_BACKGROUND_JOBS", "true"), "PASSID_BACKGROUND_JOBS", problems)
    job_interval = _number(env.get("PASSID_JOB_INTERVAL_SECONDS", "1"), "PASSID_JOB_INTERVAL_SECONDS",
                           problems, minimum=0.05, maximum=60)

    limits = {}
    for name, default in (("SESSIONS", "10 per minute"), ("TOKENS", "20 per minute"), ("SIGN_IN", "10 per minute"),
                          ("WEBHOOK_FAILURES", "30 per minute")):
        value = env.get(f"PASSID_RATE_LIMIT_{name}", default).strip()
        if not _RATE.match(value):
            problems.append(f"PASSID_RATE_LIMIT_{name} must look like '10 per minute', got {value!r}")
        limits[name] = value
    # Onboarding on the embedded sandbox needs no credentials: per client address, it is limited.
    onboard_limit = env.get("PASSID_SANDBOX_RATE_LIMIT_ONBOARD", "20 per hour").strip()
    if not _RATE.match(onboard_limit):
        problems.append(f"PASSID_SANDBOX_RATE_LIMIT_ONBOARD must look like '20 per hour', got {onboard_limit!r}")
    # `database`: counters in the app's own database, shared by every process (app/rate_limit_storage.py).
    storage = env.get("PASSID_RATE_LIMIT_STORAGE", "database").strip()
    if storage in ("database", "database://"):
        storage = "database://"
    elif not re.match(r"^(memory|redis|rediss|memcached|mongodb)://", storage):
        problems.append(
            "PASSID_RATE_LIMIT_STORAGE must be database (the app's own database), memory:// "
            "or a redis:// (or memcached://) address"  # not quoted back: an address may hold a password
        )

    # Behind a TLS-terminating proxy: how many hops of X-Forwarded-* to believe.
    trusted_proxies = int(_number(env.get("PASSID_TRUSTED_PROXIES", "0"), "PASSID_TRUSTED_PROXIES", problems,
                                  minimum=0, maximum=5))
    # How long a webhook about a token verify waits for the widget's own record of it.
    webhook_grace = _number(env.get("PASSID_WEBHOOK_GRACE_SECONDS", "30"), "PASSID_WEBHOOK_GRACE_SECONDS",
                            problems, minimum=0, maximum=3600)
    secure_cookies = _bool(env.get("PASSID_SECURE_COOKIES", "false"), "PASSID_SECURE_COOKIES", problems)

    public_url = env.get("PASSID_PUBLIC_URL", "").strip().rstrip("/") or None
    if public_url and not re.match(r"^https?://[^/\s]+$", public_url):
        problems.append(f"PASSID_PUBLIC_URL must be scheme://host[:port], got {public_url!r}")

    institution_names = _institution_names(env.get("PASSID_INSTITUTION_NAMES", ""), problems)
    # After a final state, how long a widget's handle still shows the result (issue 9, finding 4).
    result_view = int(_number(env.get("PASSID_RESULT_VIEW_SECONDS", "300"), "PASSID_RESULT_VIEW_SECONDS",
                              problems, minimum=1, maximum=3600))
    trusted_hosts = _trusted_hosts(env.get("PASSID_TRUSTED_HOSTS", ""), env.get("HOST", "127.0.0.1"), public_url,
                                   problems)

    if problems:
        raise ConfigError(problems)

    instance_dir = Path(env.get("PASSID_INSTANCE_DIR", "").strip() or INSTANCE_DIR)
    secret_key = env.get("SECRET_KEY", "").strip() or _local_secret("secret_key", instance_dir)
    return Settings(
        host=env.get("HOST", "127.0.0.1"),
        port=port,
        secret_key=secret_key,
        database_url=env.get("DATABASE_URL", "").strip() or _default_database_url(instance_dir),
        instance_dir=instance_dir,
        passid_base_url=base_url,
        passid_api_key=api_key,
        passid_webhook_secrets=_list(env.get("PASSID_WEBHOOK_SECRET", "")),
        passid_timeout_seconds=timeout,
        institution_name=institution_name,
        institution_names=institution_names,
        result_view_seconds=result_view,
        trusted_hosts=trusted_hosts,
        permissions=permissions,
        theme_primary=theme,
        request_ttl_seconds=request_ttl,
        branch_reset_seconds=branch_reset,
        poll_check_seconds=poll_check,
        max_calls_in_flight=in_flight,
        max_bodies_in_flight=bodies_in_flight,
        rate_limit_sessions=limits["SESSIONS"],
        rate_limit_tokens=limits["TOKENS"],
        rate_limit_sign_in=limits["SIGN_IN"],
        rate_limit_webhook_failures=limits["WEBHOOK_FAILURES"],
        rate_limit_storage=storage,
        sandbox_rate_limit_onboard=onboard_limit,
        trusted_proxies=trusted_proxies,
        webhook_grace_seconds=webhook_grace,
        public_url=public_url,
        secure_cookies=secure_cookies,
        allowed_embed_origins=origins,
        sandbox_enabled=sandbox_enabled,
        sandbox_jwt_secret=env.get("PASSID_SANDBOX_JWT_SECRET", "").strip()
        or f"sandbox-jwt:{secret_key}",
        webhook_retry_schedule=schedule,
        webhook_timeout_seconds=webhook_timeout,
        sandbox_min_ttl_seconds=min_ttl,
        background_jobs=background_jobs,
        job_interval_seconds=job_interval,
    )


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
        print("\n".join(config_error_sentences(error)), file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR_EXIT_STATUS) from None
