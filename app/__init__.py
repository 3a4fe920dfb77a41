"""PASSID Verify for Flask: the application factory.

Reads the settings (failing at start-up with a clear message), wires the
database, mounts each part as a blueprint and, when the embedded sandbox is
on, points the PASSID client at it with the demo institution's key.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from app.background import register_job, start_background_jobs
from app.config import PROJECT_ROOT, load_settings
from app.database import db, migrate
from app.i18n import init_i18n
from app.rate_limits import init_rate_limits
from app.security import init_security

# Parts with no cookie session: nothing for a cross-site form to ride on.
_COOKIELESS = ("health", "widget", "webhooks", "sandbox")


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (default: the process environment and `.env`)."""
    settings = load_settings(environ)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(settings.to_flask())
    db.init_app(app)
    migrate.init_app(app, db)
    from app import outcomes, verifications  # noqa: F401  (tables must be known to migrations)
    from app.staff import models as staff_models  # noqa: F401
    from app.webhooks import models as webhook_models  # noqa: F401

    init_i18n(app)
    init_security(app)
    init_rate_limits(app)

    from app.branch import bp as branch_bp
    from app.console import bp as console_bp
    from app.health import bp as health_bp
    from app.staff import bp as staff_bp
    from app.staff import init_staff
    from app.webhooks import bp as webhooks_bp
    from app.webhooks.handling import HANDLING_JOB, handle_pending
    from app.widget import bp as widget_bp

    for blueprint in (health_bp, widget_bp, webhooks_bp, staff_bp, branch_bp, console_bp):
        app.register_blueprint(blueprint)
    register_job(app, HANDLING_JOB, handle_pending)

    if settings.sandbox_enabled:
        _mount_sandbox(app)
    # Staff pages use a cookie session and CSRF; the public parts use neither.
    init_staff(app, csrf_exempt=tuple(app.blueprints[name] for name in _COOKIELESS if name in app.blueprints))

    from app import cli

    cli.init_app(app)
    start_jobs_on_first_request(app)
    return app


def _mount_sandbox(app: Flask) -> None:
    """The one place that imports the sandbox: mount it, and lend its demo key when none is set."""
    from app.passid_connection import PassidConnection, set_demo_lookup
    from app.sandbox import ensure_demo_institution, init_sandbox

    init_sandbox(app, url_prefix="/sandbox")

    def demo_connection() -> PassidConnection:
        configured = tuple(app.config["PASSID_WEBHOOK_SECRETS"])
        demo = ensure_demo_institution(
            app.config["PASSID_INSTITUTION_NAME"],
            webhook_url=f"{app.config['PUBLIC_BASE_URL']}/webhooks/passid",
            webhook_secret=configured[0] if configured else None,
        )
        return PassidConnection(
            base_url=app.config["PASSID_BASE_URL"],
            api_key=demo.sandbox_key,
            institution_id=demo.institution_id,
            webhook_secrets=configured or ((demo.webhook_secret,) if demo.webhook_secret else ()),
            timeout_seconds=float(app.config["PASSID_TIMEOUT_SECONDS"]),
            sandbox=True,
        )

    set_demo_lookup(app, demo_connection)


def start_jobs_on_first_request(app: Flask) -> None:
    """Serving processes start background jobs; CLI commands (migrations) never do.

    `wsgi.py` starts them at import for gunicorn; this covers `flask run`.
    """

    @app.before_request
    def _start_jobs() -> None:
        if "passid_scheduler" not in app.extensions:
            start_background_jobs(app)
