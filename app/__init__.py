"""PASSID Verify for Flask: the application factory.

Reads the settings (failing at start-up with a clear message), wires the
database, mounts each part as a blueprint and, when the embedded sandbox is
on, points the PASSID client at it with the demo institution's key.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from app.background import start_background_jobs
from app.config import PROJECT_ROOT, load_settings
from app.database import db, migrate
from app.i18n import init_i18n
from app.security import init_security


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
    from app import verifications  # noqa: F401  (its table must be known to migrations)

    init_i18n(app)
    init_security(app)

    from app.health import bp as health_bp
    from app.widget import bp as widget_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(widget_bp)

    if settings.sandbox_enabled:
        _mount_sandbox(app)

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
        demo = ensure_demo_institution(app.config["PASSID_INSTITUTION_NAME"])
        configured = tuple(app.config["PASSID_WEBHOOK_SECRETS"])
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
