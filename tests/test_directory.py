"""Directory import: idempotent, ${ENV} expansion, clear errors, secrets sealed and masked;
what a changed file adds and changes (and never removes) on SQLite and PostgreSQL, the same file
known again by its digest, imports one at a time, and the command's progress and summary."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import sqlite3
import uuid
from contextlib import asynccontextmanager

import pytest
from cryptography.fernet import Fernet
from rich.console import Console
from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

import gongkai.cli.directory  # noqa: F401  (registers `directory`, as cli.main() does)
from gongkai.cli.import_progress import BarProgress, import_progress
from gongkai.cli.main import app
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.directory import (
    DirectoryError,
    ImportReport,
    import_directory,
    import_directory_file,
    load_directory,
    parse_directory,
)
from gongkai.storage.models import Account, Region, Target
from tests.faults.cluster import county_directory
from tests.support import DIRECTORY, ENV, settings_for


@pytest.fixture
async def db(tmp_path):  # type: ignore[no-untyped-def]
    s = settings_for(tmp_path)
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    yield s, make_sessionmaker(engine), Sealer(s.resolved_secret_key())
    await engine.dispose()


async def test_import_builds_the_tree_and_is_idempotent(db) -> None:
    _, maker, sealer = db
    async with maker() as session:
        first = await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    assert first.regions == 6 and first.targets_added == 5  # 4 in the tree + 1 official account
    async with maker() as session:
        again = await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
        assert again.targets_added == 0 and again.targets_unchanged == 5
        assert len((await session.exec(select(Target))).all()) == 5
        village = await session.get(Region, "150627100201")
        assert village.path == "/150627/150627100/150627100201/" and village.languages == [
            "mn",
            "zh",
        ]


async def test_phones_and_secrets_are_sealed_and_shown_masked(db) -> None:
    s, maker, sealer = db
    async with maker() as session:
        await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
        sms = (await session.exec(select(Target).where(Target.channel == "sms"))).one()
        assert sms.address_masked == "138****0000, 139****0001"
        assert sealer.open(sms.address_sealed) == {"phones": ["13800000000", "13900000001"]}
        acc = (await session.exec(select(Account).where(Account.channel == "sms"))).one()
        assert "access_key_secret" not in acc.config
        assert acc.secrets_masked["access_key_secret"] != "testsecret"
    raw = sqlite3.connect(s.resolved_database_url.split("///")[1])
    dump = "\n".join(raw.iterdump())
    raw.close()
    for secret in ("13800000000", "testsecret", "s3cret-app", "robot-1", "TESTTOKEN"):
        assert secret not in dump


def test_env_expansion_and_missing_variables() -> None:
    assert "robot-1" in str(parse_directory(DIRECTORY, ENV))
    with pytest.raises(DirectoryError, match="ROBOT_1"):
        parse_directory(DIRECTORY, {})
    # lower-case ${…} is left alone: SMS template texts use it for their variables
    data = parse_directory(
        "accounts: {sms: [{name: a, provider: aliyun, template_text: '${title}'}]}", {}
    )
    assert data["accounts"]["sms"][0]["template_text"] == "${title}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("channel: village_group, robot_key", "channel: fax, robot_key"), "unknown channel 'fax'"),
        (('code: "150627100202"', 'code: "15062710020"'), "not a division code"),
        (('code: "150627101201"', 'code: "150628101201"'), "does not lie under its parent"),
        (('"139 0000 0001"', '"1390000"'), "phones[1]: not a mainland mobile number"),
        (("account: county-sms", "account: nobody"), "no sms account named 'nobody'"),
        (("token: t0ken,", f"token: t0ken, encoding_aes_key: {'k' * 42},"), "43 characters"),
        (  # the right length, mistyped: WeChat would answer every message with a failure
            ("token: t0ken,", f"token: t0ken, encoding_aes_key: '{'k' * 41}-!',"),
            "base64",
        ),
    ],
)
async def test_bad_entries_are_named(db, change, message) -> None:
    _, maker, sealer = db
    text = DIRECTORY.replace(*change)
    async with maker() as session:
        with pytest.raises(DirectoryError, match=message.replace("[", r"\[").replace("]", r"\]")):
            await import_directory(session, parse_directory(text, ENV), sealer)


# --- a re-import works in sets and tells what it did --------------------------------------------

CHANGED = (
    DIRECTORY.replace("name: 札萨克镇", "name: 札萨克镇（新）")  # a region renamed
    .replace("robot_key: robot-2}", "robot_key: robot-2, quiet_hours: '22:00-07:00'}")  # options
    .replace("access_key_secret: testsecret", "access_key_secret: rotated")  # a secret
    .replace(  # one target gone from the file, one village added in its place
        """            targets:
              - {channel: village_group, robot_key: robot-3}
""",
        """            targets: []
          - code: "150627101202"
            name: 新村
            targets:
              - {channel: village_group, robot_key: robot-4}
""",
    )
)


@asynccontextmanager
async def _database(tmp_path, postgres_server: str | None):  # type: ignore[no-untyped-def]
    """A migrated database: SQLite in the test's directory, or one of its own on the server."""
    url = None
    if postgres_server:
        url = postgres_server.rsplit("/", 1)[0] + "/" + f"dir_{uuid.uuid4().hex[:8]}"
        engine = make_engine(postgres_server)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"CREATE DATABASE {url.rsplit('/', 1)[1]}"))
        await engine.dispose()
    s = settings_for(tmp_path, **({"database_url": url} if url else {}))
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        yield make_sessionmaker(engine), Sealer(s.resolved_secret_key())
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_db(request, tmp_path):  # type: ignore[no-untyped-def]
    """The same database work on SQLite and on PostgreSQL."""
    server = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    async with _database(tmp_path, server) as db:
        yield db


async def _rows(maker) -> tuple[dict, dict, dict]:  # type: ignore[no-untyped-def]
    async with maker() as session:
        targets = {t.lookup: t for t in (await session.exec(select(Target))).all()}
        regions = {r.code: r for r in (await session.exec(select(Region))).all()}
        accounts = {(a.channel, a.name): a for a in (await session.exec(select(Account))).all()}
    return targets, regions, accounts


async def test_a_changed_file_adds_and_changes_and_removes_nothing(any_db) -> None:
    maker, sealer = any_db
    async with maker() as session:
        await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    before, _, _ = await _rows(maker)
    async with maker() as session:
        report = await import_directory(session, parse_directory(CHANGED, ENV), sealer)
    counts = {kind: vars(c) for kind, c in report.kinds().items()}
    assert counts == {
        "regions": {"added": 1, "changed": 1, "unchanged": 5, "not_in_file": 0, "deactivated": 0},
        "accounts": {"added": 0, "changed": 1, "unchanged": 2, "not_in_file": 0, "deactivated": 0},
        "targets": {"added": 1, "changed": 1, "unchanged": 3, "not_in_file": 1, "deactivated": 0},
    }
    after, regions, accounts = await _rows(maker)
    assert regions["150627101"].name == "札萨克镇（新）"
    assert regions["150627101202"].path == "/150627/150627101/150627101202/"
    assert regions["150627101202"].level == 2
    sms = accounts[("sms", "county-sms")]
    assert sealer.open(sms.secrets_sealed) == {"access_key_secret": "rotated"}
    assert sms.secrets_masked == {"access_key_secret": "rot…ed"}
    # every target that was there keeps its row (deliveries and followers refer to its id)
    assert {k: t.id for k, t in before.items()} == {k: after[k].id for k in before}
    by_address = {
        json.dumps(sealer.open(t.address_sealed), separators=(",", ":")): t for t in after.values()
    }
    gone = by_address['{"robot_key":"robot-3"}']
    assert gone.active and gone.region_code == "150627101201"
    assert by_address['{"robot_key":"robot-2"}'].options == {"quiet_hours": "22:00-07:00"}
    assert by_address['{"robot_key":"robot-4"}'].region_code == "150627101202"


async def test_deactivate_missing_retires_what_the_file_left_out_and_brings_it_back(
    any_db,
) -> None:
    """A robot replaced (a new key) or a phone list rewritten is another target: the old one
    would go on receiving. Asked to, the import deactivates what the file no longer lists, says
    why, and makes it active again when a later file lists it; other inactive targets (a key
    the provider refused) are left as they are."""
    from gongkai.storage.directory import NOT_IN_FILE

    maker, sealer = any_db
    async with maker() as session:
        await import_directory_file(session, DIRECTORY, sealer, ENV)
        plain = await import_directory_file(session, CHANGED, sealer, ENV)
        pruned = await import_directory_file(session, CHANGED, sealer, ENV, deactivate_missing=True)
        again = await import_directory_file(session, CHANGED, sealer, ENV, deactivate_missing=True)
    assert (plain.target_counts.not_in_file, plain.target_counts.deactivated) == (1, 0)
    assert not pruned.same_file  # a plain import of the same file left it active
    assert (pruned.target_counts.not_in_file, pruned.target_counts.deactivated) == (1, 1)
    assert again.same_file and again.target_counts.deactivated == 1  # as the import it repeats
    targets, _, _ = await _rows(maker)
    by_key = {sealer.open(t.address_sealed).get("robot_key"): t for t in targets.values()}
    assert not by_key["robot-3"].active and by_key["robot-3"].inactive_reason == NOT_IN_FILE
    assert all(t.active for key, t in by_key.items() if key != "robot-3")
    async with maker() as session:  # a provider refused robot-2's key meanwhile
        refused = by_key["robot-2"]
        refused.active, refused.inactive_reason = False, "93000 invalid webhook key"
        session.add(refused)
        await session.commit()
        back = await import_directory_file(session, DIRECTORY, sealer, ENV, deactivate_missing=True)
    assert back.target_counts.changed >= 1 and back.target_counts.deactivated == 1  # robot-4
    targets, _, _ = await _rows(maker)
    by_key = {sealer.open(t.address_sealed).get("robot_key"): t for t in targets.values()}
    assert by_key["robot-3"].active and by_key["robot-3"].inactive_reason is None
    assert not by_key["robot-2"].active  # not the import's to undo
    assert not by_key["robot-4"].active and by_key["robot-4"].inactive_reason == NOT_IN_FILE


async def test_an_unchanged_file_rewrites_nothing(any_db) -> None:
    """Seals are random: a re-import that sealed again would show in every row."""
    maker, sealer = any_db
    async with maker() as session:
        await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    targets, _, accounts = await _rows(maker)
    async with maker() as session:
        report = await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    assert [(c.added, c.changed, c.not_in_file) for c in report.kinds().values()] == [(0, 0, 0)] * 3
    assert report.accounts == 3 and report.regions == 6 and report.targets_unchanged == 5
    again = await _rows(maker)
    assert {k: t.address_sealed for k, t in targets.items()} == {
        k: t.address_sealed for k, t in again[0].items()
    }
    assert {k: a.secrets_sealed for k, a in accounts.items()} == {
        k: a.secrets_sealed for k, a in again[2].items()
    }


async def test_the_same_file_is_known_until_the_directory_changes(any_db) -> None:
    """The last import's file is not read again; any import that changes the directory (or
    the same text with another value for a ${NAME}) makes the next one read it."""
    maker, sealer = any_db
    async with maker() as session:
        first = await import_directory_file(session, DIRECTORY, sealer, ENV)
        again = await import_directory_file(session, DIRECTORY, sealer, ENV)
    assert not first.same_file and first.targets_added == 5
    assert again.same_file and again.targets_unchanged == 5 and again.regions == 6
    async with maker() as session:  # the demo's way in: a model, not a file
        await import_directory(session, parse_directory(CHANGED, ENV), sealer)
        back = await import_directory_file(session, DIRECTORY, sealer, ENV)
    assert not back.same_file and back.region_counts.changed == 1  # 札萨克镇 renamed back
    _, regions, _ = await _rows(maker)
    assert regions["150627101"].name == "札萨克镇"
    async with maker() as session:
        other_robot = await import_directory_file(session, DIRECTORY, sealer, {"ROBOT_1": "r-9"})
    assert not other_robot.same_file and other_robot.targets_added == 1


async def test_two_imports_at_once_land_one_after_the_other(any_db) -> None:
    """The second waits for the first, then reads what it wrote: neither fails on the other's
    new rows, and the record of the last import is the one that ran last."""
    maker, sealer = any_db

    async def one(text: str) -> ImportReport:
        async with maker() as session:
            return await import_directory_file(session, text, sealer, ENV)

    first, second = await asyncio.gather(one(DIRECTORY), one(CHANGED))
    assert sorted([first.targets_added, second.targets_added]) == [1, 5]  # one after the other
    targets, regions, _ = await _rows(maker)
    assert len(targets) == 6 and len(regions) == 7
    async with maker() as session:
        last = await import_directory_file(session, CHANGED, sealer, ENV)
        other = await import_directory_file(session, DIRECTORY, sealer, ENV)
    assert last.same_file == (second.targets_added == 1)  # the later one is the record
    assert not other.same_file


async def test_values_sealed_by_an_older_release_are_sealed_afresh(db) -> None:
    s, maker, sealer = db
    async with maker() as session:
        await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    digest = hashlib.sha256(b"gongkai-at-rest:" + s.resolved_secret_key().encode()).digest()
    fernet = Fernet(base64.urlsafe_b64encode(digest))
    async with maker() as session:
        robot = (
            await session.exec(select(Target).where(Target.region_code == "150627100202"))
        ).one()
        robot.address_sealed = fernet.encrypt(b'{"robot_key": "robot-2"}').decode()
        acc = (await session.exec(select(Account).where(Account.channel == "sms"))).one()
        acc.secrets_sealed = fernet.encrypt(b'{"access_key_secret": "testsecret"}').decode()
        session.add_all([robot, acc])
        await session.commit()
        robot_id = robot.id
    async with maker() as session:
        report = await import_directory(session, parse_directory(DIRECTORY, ENV), sealer)
    assert report.target_counts.changed == 1 and report.account_counts.changed == 1
    async with maker() as session:
        robot = await session.get(Target, robot_id)
        acc = (await session.exec(select(Account).where(Account.channel == "sms"))).one()
    assert robot.address_sealed.startswith("g1:") and acc.secrets_sealed.startswith("g1:")
    assert sealer.open(robot.address_sealed) == {"robot_key": "robot-2"}
    assert sealer.open(acc.secrets_sealed) == {"access_key_secret": "testsecret"}


async def test_an_official_account_outside_the_tree_writes_nothing(db) -> None:
    _, maker, sealer = db
    text = DIRECTORY.replace('region: "150627"}', 'region: "150628"}')
    async with maker() as session:
        with pytest.raises(DirectoryError, match="'ejhl': region 150628 is not in regions"):
            await import_directory(session, parse_directory(text, ENV), sealer)
    targets, regions, accounts = await _rows(maker)
    assert targets == {} and regions == {} and accounts == {}


async def test_a_county_of_two_thousand_villages_in_one_go(any_db) -> None:
    maker, sealer = any_db
    county = county_directory(2000)
    async with maker() as session:
        first = await import_directory(session, parse_directory(county), sealer)
    assert (first.region_counts.added, first.target_counts.added) == (2021, 2000)
    changed = county.replace("robot-150627100200}", "robot-150627100200, note: x}")
    async with maker() as session:
        again = await import_directory(session, parse_directory(changed), sealer)
    assert vars(again.target_counts) == {
        "added": 0,
        "changed": 1,
        "unchanged": 1999,
        "not_in_file": 0,
        "deactivated": 0,
    }
    targets, regions, _ = await _rows(maker)
    assert len(targets) == 2000 and len(regions) == 2021
    assert sorted(t.id for t in targets.values()) == list(range(1, 2001))


# --- the command line's progress and summary ----------------------------------------------------


def test_progress_is_plain_lines_off_a_terminal(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("ROBOT_1", "robot-1")
    path = tmp_path / "directory.yaml"
    path.write_text(DIRECTORY, encoding="utf-8")
    result = CliRunner().invoke(app, ["directory", "import", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    phases = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert phases == ["connecting", "parsing", "validating", "writing (14 rows)"]
    assert result.stdout.splitlines() == [
        "regions: 6 added, 0 changed, 0 unchanged",
        "accounts: 3 added, 0 changed, 0 unchanged",
        "targets: 5 added, 0 changed, 0 unchanged",
    ]
    path.write_text(CHANGED, encoding="utf-8")
    result = CliRunner().invoke(app, ["directory", "import", str(path)], catch_exceptions=False)
    assert result.stdout.splitlines()[-1] == (
        "targets: 1 added, 1 changed, 3 unchanged; 1 not in the file, kept (an import removes "
        "nothing)"
    )
    # the same file again: known by its digest, not parsed, nothing written
    result = CliRunner().invoke(app, ["directory", "import", str(path)], catch_exceptions=False)
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["connecting"]
    assert result.stdout.splitlines() == [
        "the file of the last import, unchanged: nothing to do",
        "regions: 0 added, 0 changed, 7 unchanged",
        "accounts: 0 added, 0 changed, 3 unchanged",
        "targets: 0 added, 0 changed, 5 unchanged; 1 not in the file, kept (an import removes "
        "nothing)",
    ]
    # asked to, the import retires the target the file no longer lists
    result = CliRunner().invoke(
        app, ["directory", "import", str(path), "--deactivate-missing"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "targets: 0 added, 0 changed, 5 unchanged; 1 not in the file, 1 of them deactivated"
    )
    result = CliRunner().invoke(  # again: known by its digest, and the summary still says so
        app, ["directory", "import", str(path), "--deactivate-missing"], catch_exceptions=False
    )
    assert result.stdout.splitlines()[0] == "the file of the last import, unchanged: nothing to do"
    assert result.stdout.splitlines()[-1] == (
        "targets: 0 added, 0 changed, 5 unchanged; 1 not in the file, 1 of them deactivated by "
        "that import"
    )


async def test_progress_on_a_terminal_draws_a_bar_per_phase(db) -> None:
    _, maker, sealer = db
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with import_progress(console) as progress:
        directory = load_directory(county_directory(300), progress=progress)
        async with maker() as session:
            await import_directory(session, directory, sealer, progress)
    assert isinstance(progress, BarProgress)
    last = screen.getvalue().rsplit("\x1b[?25l", 1)[-1]  # the final frame
    for line in ("parsing", "validating", "writing"):
        assert line in last
    assert "604/604" in last  # 1 county + 3 towns + 300 villages + 300 targets
