"""Staff accounts and sign-in, for branch mode and the console (the widget needs none)."""

from app.staff import factor_routes  # noqa: F401  (the second factor's pages, on the same blueprint)
from app.staff.auth import init_staff
from app.staff.routes import bp

__all__ = ["bp", "init_staff"]
