"""Reading the settings: every row of the table, the checks across rows, and the defaults that write files.

Why one place: a mistyped variable should stop the app at start-up with a sentence saying what is
wrong, not surface later as a 500 in front of a customer. `.env` is read for local use only; real
environment variables win.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.config.parsers import is_fernet_key
from app.config.settings import INSTANCE_DIR, PROJECT_ROOT, SETTINGS, Settings
from app.plumbing.file_modes import private_directory, write_private_file_once
from app.plumbing.outbound_targets import RefusedTarget, TargetPolicy, loopback_host, refusal_without_lookup

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


_SSO_ONLY = ("oidc_client_id", "oidc_client_secret", "oidc_role_map", "oidc_mfa_acr_values")


def _check_sso(values: Mapping[str, Any], problems: list[str]) -> None:
    """Single sign-on needs its three credentials and a role map; its issuer is https (http only on loopback,
    where nothing crosses a network); and local passwords go off only when there is another way in.

    The sentences never quote the client secret: they end up in a service log.
    """
    issuer = values["oidc_issuer"]
    if not issuer:
        named = [SETTINGS[name].variable for name in _SSO_ONLY if values[name]]
        if named:
            problems.append(f"{', '.join(named)} set without PASSID_OIDC_ISSUER: set the provider's issuer URL too, "
                            "or remove them")
        if not values["local_passwords"]:
            problems.append("PASSID_LOCAL_PASSWORDS=off needs single sign-on (PASSID_OIDC_ISSUER and its settings): "
                            "without it, staff would have no way to sign in")
        return
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or "@" in parts.netloc:
        problems.append("PASSID_OIDC_ISSUER must be a plain URL, without a query, a fragment or a user name")
    elif parts.scheme != "https" and not loopback_host(parts.hostname):
        problems.append(f"PASSID_OIDC_ISSUER must be an https:// URL (http:// only on a loopback address), "
                        f"got {issuer!r}")
    for name in ("oidc_client_id", "oidc_client_secret"):
        if not values[name]:
            problems.append(f"{SETTINGS[name].variable} is required with PASSID_OIDC_ISSUER")
    if not values["oidc_role_map"]:
        problems.append("PASSID_OIDC_ROLE_MAP is required with PASSID_OIDC_ISSUER: which values of the role claim "
                        "give which role, e.g. passid-admins=admin;passid-analysts=analyst;branch-staff=counter")
    if "openid" not in values["oidc_scopes"].split(" "):
        problems.append("PASSID_OIDC_SCOPES must include openid")


def _check_passid_connection(values: Mapping[str, Any], problems: list[str]) -> None:
    """A live (or hosted sandbox) PASSID needs its key; with neither it nor the embedded sandbox, nothing answers."""
    if values["passid_base_url"] and not values["passid_api_key"]:
        problems.append("PASSID_API_KEY is required when PASSID_BASE_URL points at a PASSID server")
    if not values["passid_base_url"] and not values["sandbox_enabled"]:
        problems.append("set PASSID_BASE_URL and PASSID_API_KEY, or leave PASSID_SANDBOX_ENABLED on")


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
    _check_sso(values, problems)
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
        if not is_fernet_key(key):
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
    # One write, newline included: two workers failing at once each write whole lines (print's separate
    # write of its end let one worker's line run into the other's).
    sys.stderr.write("".join(f"{sentence}\n" for sentence in config_error_sentences(error)))
    sys.stderr.flush()
    _stop_the_granian_server()
    raise SystemExit(CONFIG_ERROR_EXIT_STATUS) from None


def _stop_the_granian_server() -> None:
    """In a Granian worker, end the whole server: every worker meets the same configuration error.

    Granian respawns a worker that exits (`--respawn-failed-workers`, which `make run` uses so a crashed
    worker comes back), and stops on a crash loop only when one worker fails twice within seconds: with
    two workers failing a moment apart, each respawn clears the other's record and the server respawned
    workers for ever (granian 2.8). The worker stops its parent with SIGKILL, the one signal that leaves it
    a failed status (its SIGTERM handler exits 0, and systemd's Restart=on-failure must see a failure).
    Only the parent this worker was started by: once it is gone, a late sibling signals nothing.
    """
    if "granian" not in sys.modules:
        return
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or os.getppid() != parent.pid:
        return
    os.kill(parent.pid, signal.SIGKILL)
