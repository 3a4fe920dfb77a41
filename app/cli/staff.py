"""`flask staff …`: staff accounts from the server's shell (the first admin has no console to use yet).

The same changes as the console's staff page, through `app.staff.accounts`, so both refuse alike.
"""

from __future__ import annotations

import click

from app.staff import accounts
from app.staff.accounts import AccountRefused
from app.staff.models import StaffUser, find_staff
from app.staff.roles import Role


@click.group("staff")
def staff_group() -> None:
    """Staff accounts for branch mode and the console."""


def _account(username: str) -> StaffUser:
    user = find_staff(username)
    if user is None:
        raise click.ClickException(f"no staff account is named {username.strip().lower()[:80]!r}")
    return user


def _refused(error: AccountRefused) -> click.ClickException:
    return click.ClickException(str(error))


ROLE_CHOICE = click.Choice([role.value for role in Role])


@staff_group.command("create")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, default=None,
              help="counter (branch counter only), analyst (the console) or admin (everything). "
                   "Required for a new account; given for an existing one, it changes the role too.")
@click.password_option(help="At least 12 characters; prompted for when omitted.")
def create_staff(username: str, role: str | None, password: str) -> None:
    """Create a staff account, or reset an existing one's password (which signs it out everywhere)."""
    try:
        name = accounts.clean_name(username)
        user = find_staff(name)
        if user is None:
            if role is None:
                raise click.UsageError(
                    "a new account needs a role: --role counter, --role analyst or --role admin"
                )
            accounts.create_account(name, Role(role), password, by=None)
            click.echo(f"Created staff account {name!r} ({role}).")
            return
        accounts.reset_password(user, password, by=None)
        changed = role is not None and accounts.change_role(user, Role(role), by=None)
    except AccountRefused as error:
        raise _refused(error) from None
    click.echo(f"Updated staff account {name!r}: new password" + (f", role {role}" if changed else "")
               + f" (role {user.role}{', disabled' if user.disabled_at else ''}).")


@staff_group.command("break-glass")
@click.argument("username")
@click.password_option(help="At least 12 characters; prompted for when omitted. Keep it sealed: it is for "
                            "the day single sign-on is down.")
def break_glass_command(username: str, password: str) -> None:
    """Create the one break-glass admin, or give it a new password (which signs it out everywhere).

    With PASSID_LOCAL_PASSWORDS=off it is the only account that signs in with a password; each of its sign-ins
    is in the audit log as such.
    """
    try:
        user, created = accounts.make_break_glass(username, password)
    except AccountRefused as error:
        raise _refused(error) from None
    click.echo(f"{'Created' if created else 'New password for'} the break-glass account {user.username!r} (admin).")


@staff_group.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE_CHOICE)
def set_role_command(username: str, role: str) -> None:
    """Change an account's role (which signs it out everywhere)."""
    user = _account(username)
    try:
        changed = accounts.change_role(user, Role(role), by=None)
    except AccountRefused as error:
        raise _refused(error) from None
    if changed:
        click.echo(f"{user.username!r} is now {role}.")
    else:
        click.echo(f"{user.username!r} already is {role}.")


@staff_group.command("disable")
@click.argument("username")
def disable_command(username: str) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    user = _account(username)
    if accounts.disable(user, by=None):
        click.echo(f"Disabled {user.username!r}; its sessions have ended.")
    else:
        click.echo(f"{user.username!r} was already disabled.")


@staff_group.command("enable")
@click.argument("username")
def enable_command(username: str) -> None:
    """Let a disabled account sign in again (with the password it had)."""
    user = _account(username)
    if accounts.enable(user, by=None):
        click.echo(f"Enabled {user.username!r}.")
    else:
        click.echo(f"{user.username!r} was not disabled.")


@staff_group.command("reset-second-factor")
@click.argument("username")
def reset_second_factor_command(username: str) -> None:
    """Forget an account's passkeys, authenticator app and recovery codes (it lost them); its sessions end."""
    user = _account(username)
    if accounts.reset_second_factor(user, by=None):
        click.echo(f"Reset the second factor of {user.username!r}; its sessions have ended.")
    else:
        click.echo(f"{user.username!r} has no second factor to reset.")


@staff_group.command("list")
def list_command() -> None:
    """Every account: name, role, created, last sign-in, disabled, single sign-on or break-glass."""
    found = accounts.all_accounts()
    if not found:
        click.echo("No staff accounts yet.")
        return
    for user in found:
        last = f"{user.last_sign_in_at:%Y-%m-%d %H:%M}" if user.last_sign_in_at else "never"
        state = f"  disabled {user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else ""
        kind = "  single sign-on" if user.single_sign_on else "  break-glass" if user.break_glass else ""
        click.echo(f"{user.username:<24} {user.role:<8} created {user.created_at:%Y-%m-%d %H:%M}  "
                   f"last sign-in {last}{state}{kind}")
