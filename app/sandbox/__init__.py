"""The embedded PASSID sandbox: PASSID's side of the wire, on this machine.

It implements all of `spec/passid-api.md`. The main app mounts it with
`init_sandbox(app)` (the only import of this package from outside it) and
talks to it over HTTP through the PASSID client, exactly as it talks to the
live API. It also runs on its own:

    flask --app app.sandbox db upgrade
    flask --app app.sandbox run
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy.exc import IntegrityError

from app.plumbing.background import register_job, start_background_jobs
from app.plumbing.database import db
from app.sandbox import models  # noqa: F401  (tables must be known to migrations)
from app.sandbox.errors import register_error_handlers

DEMO_SLOT = "demo"


@dataclass(frozen=True)
class DemoCredentials:
    institution_id: str
    institution_name: str
    sandbox_key: str
    webhook_secret: str | None


def init_sandbox(app: Flask, url_prefix: str = "/sandbox") -> None:
    """Mount the sandbox's API and phone page under `url_prefix` and schedule its deliveries."""
    from app.sandbox import api, openapi, phone  # noqa: F401  (routes register on the blueprint)
    from app.sandbox.blueprint import bp
    from app.sandbox.limits import init_limits
    from app.sandbox.webhooks import DELIVERY_JOB, deliver_due

    app.register_blueprint(bp, url_prefix=url_prefix or None)
    register_error_handlers(app, f"{url_prefix}/api/")
    init_limits(app)
    register_job(app, DELIVERY_JOB, deliver_due)


def ensure_demo_institution(
    institution_name: str, webhook_url: str | None = None, webhook_secret: str | None = None
) -> DemoCredentials:
    """The institution `make run` onboards on first start; the same one on every later start.

    Called inside an app context. Two processes starting at once race on the
    unique demo slot; the loser reads the winner's row.
    """
    from app.sandbox import bridge
    from app.sandbox.models import SandboxInstitution

    def existing() -> SandboxInstitution | None:
        return db.session.execute(
            db.select(SandboxInstitution).filter_by(demo_slot=DEMO_SLOT)
        ).scalar_one_or_none()

    institution = existing()
    if institution is None:
        institution = bridge.onboard(institution_name, demo_slot=DEMO_SLOT)
        import secrets

        institution.webhook_secret = f"whsec_{secrets.token_urlsafe(24)}"
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            institution = existing()
            assert institution is not None
    changed = False
    if webhook_url and institution.webhook_url != webhook_url:
        # The app's receiver moves with its address (`make run PORT=…`).
        institution.webhook_url, changed = webhook_url, True
    if webhook_secret and institution.webhook_secret != webhook_secret:
        # A secret set in the app's configuration is the one the demo signs with.
        institution.webhook_secret, changed = webhook_secret, True
    if changed:
        db.session.commit()
    return DemoCredentials(
        institution_id=institution.id,
        institution_name=institution.name,
        sandbox_key=institution.sandbox_key,
        webhook_secret=institution.webhook_secret,
    )


def create_app(environ: dict[str, str] | None = None) -> Flask:
    """The sandbox alone, at the root path, for teams that only want a local PASSID."""
    from app.config import PROJECT_ROOT, install_settings, load_settings, load_settings_or_exit
    from app.plumbing.database import add_migration_commands
    from app.plumbing.i18n import init_i18n
    from app.plumbing.json_bodies import init_json_bodies
    from app.plumbing.static_assets import install_fingerprints

    settings = load_settings(environ) if environ is not None else load_settings_or_exit()
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    install_settings(app, settings)
    init_json_bodies(app)  # the same bounded JSON parser as the app's
    db.init_app(app)
    add_migration_commands(app)
    init_i18n(app)  # the phone page speaks the customer's language here too
    install_fingerprints(app, {})  # its pages link plain /static/ names, served by Flask itself
    init_sandbox(app, url_prefix="")

    # Serving processes deliver webhooks; CLI commands such as `db upgrade` never start the jobs.
    @app.before_request
    def _start_jobs() -> None:
        if "passid_scheduler" not in app.extensions:
            start_background_jobs(app)

    return app
