"""Staff roles and the one decorator that guards a staff page by role.

Three roles, each a superset of what its work needs and nothing more:
counter staff verify at the branch counter; analysts read and act in the console; admins
also read the audit log, redact, manage staff and run the go-live checklist. An admin may
open every page, so a route lists only the least role that may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import ParamSpec, TypeVar

from babel.lists import format_list
from flask import current_app, url_for
from flask_babel import LazyString, get_locale, lazy_gettext
from flask_login import current_user, login_required

from app.plumbing.page_refusals import stop_with_page

P = ParamSpec("P")
R = TypeVar("R")


class Role(StrEnum):
    COUNTER = "counter"
    ANALYST = "analyst"
    ADMIN = "admin"


ROLE_NAMES: dict[Role, LazyString] = {
    Role.COUNTER: lazy_gettext("Counter staff"),
    Role.ANALYST: lazy_gettext("Analyst"),
    Role.ADMIN: lazy_gettext("Administrator"),
}


def role_name(role: str) -> str:
    """A role as staff read it, in their language; a code this app does not know stays as it is."""
    try:
        return str(ROLE_NAMES[Role(role)])
    except ValueError:
        return role


def role_names(roles: Iterable[Role]) -> str:
    """Roles as one list in the page's language ("Analyst and Administrator", "Analyste et Administrateur")."""
    return format_list([role_name(role) for role in roles], locale=get_locale() or "en")


def may_use(role: str | None, allowed: tuple[Role, ...]) -> bool:
    """Whether an account with `role` may use a page open to `allowed` (admins may use every page)."""
    return role == Role.ADMIN or role in allowed


def require_role(*allowed: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Signed in (else the sign-in page), and of one of `allowed` roles (else 403 with a sentence)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if not may_use(current_user.role, allowed):
                open_to = allowed if Role.ADMIN in allowed else (*allowed, Role.ADMIN)
                stop_with_page(403, "staff/forbidden.html", open_to=role_names(open_to))
            return view(*args, **kwargs)

        # Read by `may_open` (the staff nav, the page after sign-in); copied onto login_required's wrapper.
        guarded.allowed_roles = allowed  # type: ignore[attr-defined]
        return login_required(guarded)

    return decorate


def allowed_roles(endpoint: str) -> tuple[Role, ...] | None:
    """The roles a staff page is open to, or None for a page `require_role` does not guard."""
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "allowed_roles", None) if view is not None else None


def may_open(endpoint: str, role: str | None) -> bool:
    """Whether an account with `role` may open `endpoint`: the nav shows only these links."""
    allowed = allowed_roles(endpoint)
    return allowed is None or may_use(role, allowed)


def home_for(role: str | None) -> str:
    """Where an account lands after signing in: counter staff at the counter, everyone else in the history."""
    return url_for("branch.counter") if role == Role.COUNTER else url_for("console.history")
