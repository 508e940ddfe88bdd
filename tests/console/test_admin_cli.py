"""``gongkai user create``: argon2-hashed console users from the command line."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

import gongkai.cli.users  # noqa: F401  (registers ``user create``, as cli.main() does)
from gongkai.cli.main import app
from gongkai.console.users import check_password


def test_user_create_hashes_the_password_and_refuses_duplicates(tmp_path) -> None:
    env = {
        "GONGKAI_DATA_DIR": str(tmp_path),
        "GONGKAI_SECRET_KEY": "k" * 32,
        "GONGKAI_PUBLIC_URL": "https://gongkai.example",
    }
    runner = CliRunner()
    args = ["user", "create", "--role", "publisher", "--name", "li", "--password-stdin"]
    result = runner.invoke(app, args, input="long-enough-pw\n", env=env)
    assert result.exit_code == 0, result.output
    assert "https://gongkai.example/admin/" in result.output
    with sqlite3.connect(tmp_path / "gongkai.sqlite3") as db:
        ((role, digest),) = db.execute("select role, password_hash from user where name='li'")
    assert role == "publisher" and digest.startswith("$argon2id$")
    assert "long-enough-pw" not in digest and check_password(digest, "long-enough-pw")
    again = runner.invoke(app, args, input="long-enough-pw\n", env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(app, [*args[:5], "wang", "--password-stdin"], input="short\n", env=env)
    assert short.exit_code == 1 and "at least 8" in short.output
    bad_role = runner.invoke(
        app,
        ["user", "create", "--role", "boss", "--name", "x", "--password-stdin"],
        input="long-enough-pw\n",
        env=env,
    )
    assert bad_role.exit_code != 0
    prompted = runner.invoke(
        app,
        ["user", "create", "--role", "viewer", "--name", "zhao"],
        input="another-pass\nanother-pass\n",
        env=env,
    )
    assert prompted.exit_code == 0, prompted.output
