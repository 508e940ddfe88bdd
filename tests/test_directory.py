"""Directory import: idempotent, ${ENV} expansion, clear errors, secrets sealed and masked."""

from __future__ import annotations

import sqlite3

import pytest
from sqlmodel import select

from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.directory import DirectoryError, import_directory, parse_directory
from gongkai.storage.models import Account, Region, Target
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
    ],
)
async def test_bad_entries_are_named(db, change, message) -> None:
    _, maker, sealer = db
    text = DIRECTORY.replace(*change)
    async with maker() as session:
        with pytest.raises(DirectoryError, match=message.replace("[", r"\[").replace("]", r"\]")):
            await import_directory(session, parse_directory(text, ENV), sealer)
