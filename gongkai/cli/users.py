"""``gongkai user create``: console users (the ``user`` sub-app lives in cli.py)."""

from __future__ import annotations

import sys

import typer

from gongkai.cli.main import RoleChoice, database, fail, out, run, settings, user_app


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("密码 / password", hide_input=True, confirmation_prompt=True))


@user_app.command("create")
def user_create(
    role: RoleChoice = typer.Option(..., "--role", help="admin | publisher | viewer"),
    name: str = typer.Option(..., "--name", help="the login name"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from the first line of standard input"
    ),
) -> None:
    """Create a console user (the password is stored as an argon2 hash)."""
    from gongkai.console.users import MIN_PASSWORD_LENGTH, UserError, create_user
    from gongkai.storage.models import Role

    s = settings()
    password = _read_password(password_stdin)
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"password: at least {MIN_PASSWORD_LENGTH} characters")

    async def go() -> None:
        async with database(s) as maker, maker() as session:
            await create_user(session, name, Role(role), password)

    try:
        run(go)
    except UserError as exc:
        fail(str(exc))
    out.print(
        f"user {name.strip()} ({role.value}) created; sign in at {s.public_url.rstrip('/')}/admin/",
        highlight=False,
    )
