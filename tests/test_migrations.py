"""Migrations run from the first table to head, and back, on SQLite and on PostgreSQL; a
database already at head is left alone without starting alembic."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid

import pytest
from sqlalchemy import inspect, text

from gongkai.storage.db import (
    alembic_config,
    database_revisions,
    head_revisions,
    make_engine,
    upgrade,
)
from tests.support import item, settings_for


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


EXPECTED = {
    "region",
    "account",
    "target",
    "item",
    "delivery",
    "attempt",
    "apitoken",
    "user",
    "auditentry",
    "follower",
    "subscription",
    "faqentry",
    "question",
    "alembic_version",
}


async def test_migrations_on_sqlite(tmp_path) -> None:
    url = settings_for(tmp_path).resolved_database_url
    await upgrade(url)
    assert EXPECTED <= await _tables(url)
    await upgrade(url)  # a second run is a no-op


@pytest.mark.postgres
async def test_migrations_and_the_pipeline_on_postgresql(
    tmp_path, postgres_url, embedded_redis_url, redis
) -> None:
    await upgrade(postgres_url)
    assert EXPECTED <= await _tables(postgres_url)
    from tests.support import fetch_deliveries, ingest, prepare_db, run_workers

    s = settings_for(tmp_path, database_url=postgres_url)
    await prepare_db(s)
    result = await ingest(s, embedded_redis_url, item())
    assert result.created
    await run_workers(s, embedded_redis_url)
    rows, _ = await fetch_deliveries(s, item()["id"])
    assert [d.status for d in rows] == ["delivered"]
    assert rows[0].delivered_at.tzinfo is not None


async def test_the_migrated_schema_matches_the_models(tmp_path) -> None:
    """A model change without its migration (or the reverse) shows up here, index by index."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import gongkai.storage.models  # noqa: F401  (registers the tables)

    url = settings_for(tmp_path).resolved_database_url
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), SQLModel.metadata)
            )
    finally:
        await engine.dispose()
    tables_and_indexes = [
        d
        for d in diff
        if d[0]
        in {"add_table", "remove_table", "add_index", "remove_index", "add_column", "remove_column"}
    ]
    assert tables_and_indexes == []


def test_the_heads_read_from_the_scripts_are_alembics() -> None:
    """The cheap reading of the scripts' heads says what alembic says, so a new migration (or
    a merge of two) is never skipped as if the database were already there."""
    from alembic.script import ScriptDirectory

    url = "sqlite+aiosqlite://"
    assert head_revisions() == set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


async def _execute(url: str, sql: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_an_old_database_is_brought_to_head(tmp_path) -> None:
    url = settings_for(tmp_path).resolved_database_url
    await upgrade(url, "0007")
    assert "directoryimport" not in await _tables(url)
    await upgrade(url)
    assert "directoryimport" in await _tables(url)
    assert await database_revisions(url) == head_revisions()


async def test_a_database_of_a_newer_release_is_still_refused(tmp_path) -> None:
    """A revision the scripts do not know is not head: alembic runs and says so."""
    url = settings_for(tmp_path).resolved_database_url
    await upgrade(url)
    await _execute(url, "UPDATE alembic_version SET version_num = '9999'")
    from alembic.util import CommandError

    with pytest.raises(CommandError, match="9999"):
        await upgrade(url)


def test_a_database_at_head_is_not_migrated_again(tmp_path) -> None:
    """Every command checks the migrations; at head that check must not start alembic (its
    start-up was a seventh of a re-import that changes nothing)."""
    url = settings_for(tmp_path).resolved_database_url
    program = textwrap.dedent(f"""
        import asyncio, sys
        from gongkai.storage.db import upgrade
        asyncio.run(upgrade({url!r}))
        print("alembic" in sys.modules)
    """)

    def alembic_ran() -> str:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert alembic_ran() == "True"  # a fresh database: migrated
    assert alembic_ran() == "False"  # at head: nothing to do, alembic not even imported
    assert EXPECTED <= asyncio.run(_tables(url))


@pytest.mark.postgres
async def test_an_old_postgresql_database_is_brought_to_head(postgres_url) -> None:
    name = f"old_{uuid.uuid4().hex[:8]}"
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    assert await database_revisions(url) == set()  # fresh: no alembic_version yet
    await upgrade(url, "0007")
    assert await database_revisions(url) == {"0007"}
    await upgrade(url)
    assert "directoryimport" in await _tables(url)
    assert await database_revisions(url) == head_revisions()
    await upgrade(url)  # at head: nothing to do
    assert await database_revisions(url) == head_revisions()
