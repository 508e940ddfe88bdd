"""The command line as a publisher uses it: clear refusals, publish --wait, render, the log."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

import gongkai.cli.directory  # noqa: F401  (registers `directory`, as cli.main() does)
from gongkai.cli.main import app
from tests.support import DIRECTORY, item


@pytest.fixture
def cli(tmp_path, embedded_redis_url, monkeypatch):  # type: ignore[no-untyped-def]
    import redis as sync_redis

    sync_redis.Redis.from_url(embedded_redis_url).flushall()
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GONGKAI_REDIS_URL", embedded_redis_url)
    monkeypatch.setenv("GONGKAI_PUBLIC_URL", "http://gongkai.test")
    monkeypatch.setenv("GONGKAI_QUIET_HOURS", "off")
    monkeypatch.setenv("ROBOT_1", "robot-1")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    (tmp_path / "directory.yaml").write_text(DIRECTORY, encoding="utf-8")
    result = invoke("directory", "import", str(tmp_path / "directory.yaml"))
    assert result.exit_code == 0, result.output
    return invoke, tmp_path


def write_item(tmp_path, **kw):  # type: ignore[no-untyped-def]
    path = tmp_path / "item.yaml"
    path.write_text(yaml.safe_dump(item(**kw), allow_unicode=True), encoding="utf-8")
    return str(path)


def test_directory_import_reports_and_is_idempotent(cli) -> None:
    invoke, tmp_path = cli
    result = invoke("directory", "import", str(tmp_path / "directory.yaml"))
    assert "0 added" in result.output and "5 unchanged" in result.output


def test_bad_directory_names_the_place_and_exits_non_zero(cli) -> None:
    invoke, tmp_path = cli
    bad = tmp_path / "bad.yaml"
    bad.write_text(DIRECTORY.replace("channel: sms", "channel: pager"), encoding="utf-8")
    result = invoke("directory", "import", str(bad))
    assert result.exit_code == 1
    assert "unknown channel 'pager'" in result.output and "Traceback" not in result.output


def test_refused_item_prints_each_field_and_exits_non_zero(cli) -> None:
    invoke, tmp_path = cli
    result = invoke(
        "publish", write_item(tmp_path, disclosure="on_request", body="联系电话13812345678")
    )
    assert result.exit_code == 1
    assert "disclosure" in result.output and "body" in result.output
    assert "13812345678" not in result.output and "Traceback" not in result.output
    assert invoke("publish", str(tmp_path / "missing.yaml")).exit_code == 1


def test_publish_wait_delivers_and_summarises(cli) -> None:
    invoke, tmp_path = cli
    result = invoke("publish", write_item(tmp_path), "--wait")
    assert result.exit_code == 0, result.output
    assert "ejhl-2026-0113 ingested, planning queued" in result.output
    # not a terminal: plain lines, planning first, then the deliveries
    lines = result.output.splitlines()
    assert lines.index("planning: 1 of 1") < lines.index("delivering: 1 of 1")
    assert "web" in result.output and "delivered" in result.output
    again = invoke("publish", write_item(tmp_path))
    assert "already ingested" in again.output
    log = invoke("deliveries", "--csv")
    rows = log.output.strip().splitlines()
    assert rows[0].startswith("id,item,channel") and len(rows) == 2 and ",delivered," in rows[1]


def test_render_prints_what_would_be_sent_without_sending(cli) -> None:
    invoke, tmp_path = cli
    result = invoke(
        "render",
        write_item(tmp_path),
        "--channel",
        "village_group",
        "--region",
        "150627100201",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["languages"] == ["mn", "zh"]
    assert "translation missing: mn" in data["notes"]
    assert all(p["bytes"] <= 4096 for p in data["parts"])
    assert "城乡低保标准每人每月提高60元" in data["parts"][0]["text"]
    unknown = invoke("render", write_item(tmp_path), "--channel", "fax")
    assert unknown.exit_code == 1 and "unknown channel" in unknown.output


def test_render_sms_masks_phone_numbers(cli) -> None:
    invoke, tmp_path = cli
    result = invoke("render", write_item(tmp_path), "--channel", "sms", "--json")
    assert result.exit_code == 0, result.output
    assert "13800000000" not in result.output and "138****0000" in result.output


def test_token_create_prints_a_token_once(cli) -> None:
    invoke, _ = cli
    result = invoke("token", "create", "--role", "publisher", "--name", "county office")
    assert result.exit_code == 0 and result.output.strip().startswith("gk_")
    bad = invoke("token", "create", "--role", "king", "--name", "x")
    assert bad.exit_code != 0


_BOMB = """\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_cli_publish_and_directory_import_refuse_a_bomb(cli) -> None:
    invoke, tmp_path = cli
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_BOMB, encoding="utf-8")
    for command in (("publish", str(bomb)), ("directory", "import", str(bomb))):
        started = time.monotonic()
        result = invoke(*command)
        assert time.monotonic() - started < 5  # the CLI starts a database; the refusal is instant
        assert result.exit_code == 1, result.output
        assert "aliases are expanded" in result.output and "Traceback" not in result.output
        assert len(result.output) < 2000


# Libraries no command needs to start: each command imports its own when it runs.
HEAVY = {"sqlalchemy", "sqlmodel", "alembic", "pydantic_settings", "aiohttp", "aiogram", "jieba"}
HEAVY |= {"jinja2", "arq", "redis", "cryptography", "wechatpy", "yaml", "argon2"}


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """``gongkai --help``, every command registered as ``gongkai`` registers them, loads none of
    the database, web, queue or provider libraries: start-up was half of a re-import that
    changes nothing, and a command that needs one imports it inside its function."""
    program = (
        "import atexit, sys\n"
        f"heavy = {sorted(HEAVY)!r}\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in heavy or m.startswith('gongkai.storage'))))\n"
        "sys.argv = ['gongkai', '--help']\n"
        "from gongkai.cli.main import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "directory" in done.stdout  # the help, with every command group
    assert "faq" in done.stdout and "telegram" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_role_choices_are_the_roles() -> None:
    from gongkai.cli.main import RoleChoice
    from gongkai.storage.models import Role

    assert [r.value for r in RoleChoice] == [r.value for r in Role]
