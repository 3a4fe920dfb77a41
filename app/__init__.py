"""PASSID Verify for Flask: the application factory.

Reads the settings (failing at start-up with a clear message), wires the
database, mounts each part as a blueprint and, when the embedded sandbox is
on, points the PASSID client at it with the demo institution's key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from sqlalchemy.exc import OperationalError

from app.config import (
    PROJECT_ROOT,
    ConfigError,
    exit_with,
    install_settings,
    load_settings,
    load_settings_or_exit,
    settings_of,
)
from app.error_pages import busy_answer, init_error_pages
from app.plumbing.access_log import init_access_log
from app.plumbing.background import register_job, start_background_jobs
from app.plumbing.database import add_migration_commands, db, prepare_sqlite_file
from app.plumbing.file_modes import tighten_instance_dir
from app.plumbing.htmx import htmx
from app.plumbing.i18n import init_i18n
from app.plumbing.json_bodies import init_json_bodies
from app.plumbing.log_format import init_logging
from app.plumbing.metrics import init_metrics
from app.plumbing.rate_limits import init_rate_limits
from app.plumbing.request_guards import init_request_guards
from app.plumbing.security import init_proxy_fix, init_security

# Parts with no cookie session: nothing for a cross-site form to ride on.
_COOKIELESS = ("health", "widget", "api", "webhooks", "sandbox")


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (default: the process environment and `.env`).

    With an explicit `environ` a bad value raises ConfigError (for tests and embedding code);
    from the process environment, as `flask --app app …` and `wsgi.py` call it, it prints one
    sentence per problem and exits non-zero instead of a traceback.
    """
    settings = load_settings(environ) if environ is not None else load_settings_or_exit()
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    install_settings(app, settings)
    init_logging(settings.log_format)  # first: start-up's own lines in the operator's format
    init_json_bodies(app)  # every JSON body through one bounded parser
    # Owner-only secrets and database, before anything opens them: no other account on the host reads them.
    tighten_instance_dir(settings.instance_dir)
    prepare_sqlite_file(settings.database_url)
    db.init_app(app)
    add_migration_commands(app)  # Flask-Migrate (and Alembic) imported only when a `flask db` command runs
    with app.app_context():  # before any connection opens, so the pool gauges see every one
        init_metrics(app, db.engines)
    _install_data_keys(app, settings.data_keys + settings.data_keys_decrypt_only, exit_on_error=environ is None)
    from app.rules import (  # noqa: F401  (tables must be known to migrations)
        audit,
        funnel,  # with the listener that ends a journey when its verification is recorded
        notifications,
        outcomes,
        session_events,  # noqa: F401  (registers the listener that tells the bank's backend)
        sessions,
        verifications,
    )
    from app.rules import webhook_receipts as webhook_models  # noqa: F401
    from app.staff import models as staff_models  # noqa: F401

    init_i18n(app)
    init_security(app)
    init_error_pages(app)  # before the sandbox mounts: its handlers pass non-API errors on to these
    htmx.init_app(app)
    init_rate_limits(app)

    from app.api import bp as api_bp
    from app.branch import bp as branch_bp
    from app.console import bp as console_bp
    from app.health import bp as health_bp
    from app.staff import bp as staff_bp
    from app.staff import init_staff
    from app.webhooks import bp as webhooks_bp
    from app.webhooks.handling import HANDLING_JOB, handle_pending
    from app.widget import bp as widget_bp

    for blueprint in (health_bp, widget_bp, api_bp, webhooks_bp, staff_bp, branch_bp, console_bp):
        app.register_blueprint(blueprint)
    register_job(app, HANDLING_JOB, handle_pending)
    from app.rules.retention import PURGE_EVERY_SECONDS, PURGE_JOB, purge_job

    register_job(app, PURGE_JOB, purge_job, every_seconds=PURGE_EVERY_SECONDS)
    register_job(app, funnel.SETTLE_JOB, funnel.settle_abandoned, every_seconds=funnel.SETTLE_EVERY_SECONDS)
    if settings.notify_url:  # no URL, no events queued, nothing to pass over
        register_job(app, notifications.NOTIFY_JOB, notifications.deliver_due)
        register_job(app, session_events.EXPIRY_JOB, session_events.announce_expired_sessions,
                     every_seconds=session_events.EXPIRY_EVERY_SECONDS)

    # The sandbox exists only when the app runs on it: with a PASSID_BASE_URL (live, or PASSID's own
    # sandbox) nothing under /sandbox answers and none of its jobs is scheduled.
    if settings.embedded_sandbox:
        _mount_sandbox(app)
    # Staff pages use a cookie session and CSRF; the public parts use neither.
    init_staff(app, csrf_exempt=tuple(app.blueprints[name] for name in _COOKIELESS if name in app.blueprints))

    from app import cli

    cli.init_app(app)
    start_jobs_on_first_request(app)
    # WSGI layers, innermost first: Flask; static files (init_security); the widget's pending polls (installed by
    # its blueprint); then these, each wrapped around the one before.
    init_proxy_fix(app)  # around every layer that answers by itself: they see the client's host and address
    init_request_guards(app, busy=busy_answer)  # slow bodies and server-copied environment, before any other layer
    init_access_log(app)  # last: the outermost layer sees every request, static files too
    return app


def _install_data_keys(app: Flask, keys: tuple[str, ...], *, exit_on_error: bool) -> None:
    """The keyring on the app (PASSID_DATA_KEY's keys, then the decrypt-only ones: only the first encrypts),
    refused at start-up (one sentence, non-zero exit) when it cannot read what the database already holds,
    rather than failing later on a page."""
    from app.plumbing import encryption

    encryption.init_app(app, keys)
    with app.app_context():
        try:
            with db.engine.connect() as connection:
                unreadable = encryption.unreadable_data(encryption.keyring(), connection)
        except OperationalError as down:  # the database is down: /healthz says so; the check waits for a restart
            logging.getLogger(__name__).warning("data key not checked: the database cannot be reached (%s)",
                                                type(down).__name__)
            return
    if unreadable is not None:
        wrong_key = ConfigError([encryption.wrong_key_sentence(unreadable)])
        if exit_on_error:
            exit_with(wrong_key)
        raise wrong_key


def _mount_sandbox(app: Flask) -> None:
    """The one place that imports the sandbox: mount it, and lend its demo key when none is set."""
    from app.plumbing.passid_connection import PassidConnection, set_demo_lookup
    from app.sandbox import ensure_demo_institution, init_sandbox

    init_sandbox(app, url_prefix="/sandbox")

    settings = settings_of(app)

    def demo_connection() -> PassidConnection:
        configured = settings.passid_webhook_secrets
        demo = ensure_demo_institution(
            settings.institution_name,
            webhook_url=f"{settings.public_base_url}/webhooks/passid",
            webhook_secret=configured[0] if configured else None,
        )
        return PassidConnection(
            base_url=settings.passid_url,
            api_key=demo.sandbox_key,
            institution_id=demo.institution_id,
            webhook_secrets=configured or ((demo.webhook_secret,) if demo.webhook_secret else ()),
            timeout_seconds=settings.passid_timeout_seconds,
            sandbox=True,
        )

    set_demo_lookup(app, demo_connection)


def start_jobs_on_first_request(app: Flask) -> None:
    """Serving processes start background jobs; CLI commands (migrations) never do.

    `wsgi.py` starts them at import in each server worker; this covers `flask run`.
    """

    @app.before_request
    def _start_jobs() -> None:
        if "passid_scheduler" not in app.extensions:
            start_background_jobs(app)
