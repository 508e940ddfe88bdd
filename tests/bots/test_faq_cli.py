"""``gongkai faq …``: import, export, ``ask --json`` (the contract), the ``-`` batch mode, and
importing an official account's built-in auto-reply rules from the fake WeChat API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

import gongkai.cli.faq  # noqa: F401  (registers `faq` on the app, as cli.main() does)
from gongkai.cli.main import app
from gongkai.sandbox import wechat_api
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import FaqEntry
from tests.bot_support import DEMO_FAQ, DIRECTORY, SECRETS
from tests.support import prepare_db, settings_for


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"GONGKAI_DATA_DIR": str(tmp_path), "GONGKAI_SECRET_KEY": "test-secret-key"}

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env=env, input=input)

    assert invoke("faq", "import", str(DEMO_FAQ)).exit_code == 0
    return invoke


def test_ask_json_is_the_contract(cli) -> None:  # type: ignore[no-untyped-def]
    got = cli("faq", "ask", "低保咋申请", "--json")
    assert got.exit_code == 0, got.output
    data = json.loads(got.stdout)
    assert set(data) == {"id", "answer", "score"}
    assert data["id"] == "dibao-apply" and data["answer"].startswith("持户口簿")
    assert 0 < data["score"] <= 1
    nothing = json.loads(cli("faq", "ask", "今天天气怎么样", "--json").stdout)
    assert nothing["id"] is None and "12345" in nothing["answer"]


def test_region_and_language_options(cli) -> None:  # type: ignore[no-untyped-def]
    village = json.loads(
        cli("faq", "ask", "低保标准多少", "--region", "150627100201", "--json").stdout
    )
    assert village["id"] == "dibao-standard-150627"
    mn = json.loads(cli("faq", "ask", "低保咋申请", "--lang", "mn", "--json").stdout)
    assert mn["id"] == "dibao-apply" and mn["answer"].startswith("ᠠᠮᠢᠳᠤᠷᠠᠯ")
    bad = cli("faq", "ask", "低保", "--region", "ejhl")
    assert bad.exit_code == 1 and "--region" in bad.output and "Traceback" not in bad.output


def test_dash_answers_each_line_of_stdin(cli) -> None:  # type: ignore[no-untyped-def]
    got = cli("faq", "ask", "-", input="低保咋申请\n今天天气怎么样\n户口怎么迁\n")
    assert got.exit_code == 0, got.output
    lines = [json.loads(line) for line in got.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["dibao-apply", None, "hukou-move"]


def test_export_round_trips_and_import_is_idempotent(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exported = cli("faq", "export").stdout
    assert "dibao-apply" in exported and "低保: [最低生活保障" in exported
    copy = tmp_path / "copy.yaml"
    copy.write_text(exported, encoding="utf-8")
    again = cli("faq", "import", str(copy))
    assert again.exit_code == 0 and "0 added, 0 updated, 8 unchanged" in again.stdout
    assert cli("faq", "export").stdout == exported


def test_a_bad_faq_file_names_the_entry_and_field(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - id: x\n    question: 低保？\n", encoding="utf-8")
    got = cli("faq", "import", str(bad))
    assert got.exit_code == 1
    assert "entries[0]" in got.output and "answer" in got.output
    assert "Traceback" not in got.output


async def test_import_wechat_takes_over_the_built_in_rules(tmp_path: Path, embedded_redis_url: str,
                                                           redis: object) -> None:  # fmt: skip
    fake, state = wechat_api.make_app(SECRETS)
    async with serve(fake) as base:
        s = settings_for(tmp_path)
        await prepare_db(s, DIRECTORY)
        env = {**os.environ, "GONGKAI_DATA_DIR": str(tmp_path),
               "GONGKAI_SECRET_KEY": "test-secret-key", "GONGKAI_WECHAT_API_BASE": base,
               "GONGKAI_REDIS_URL": embedded_redis_url}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from gongkai.cli.main import main; main()",
            "faq", "import-wechat", "--account", "plain",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "3 added" in out.decode() and "img reply cannot be imported" in out.decode()
    assert state.calls_to("cgi-bin/get_current_autoreply_info")
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            by_id = {r.id: r for r in (await session.exec(select(FaqEntry))).all()}
    finally:
        await engine.dispose()
    assert by_id["wechat-低保申请"].keywords == ["低保", "最低生活保障"]
    assert by_id["wechat-政策图文"].answer == "政策解读 https://mp.weixin.qq.com/s/fake"
