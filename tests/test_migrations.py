"""Migrations run from the first table to head, and back, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from gongkai.storage.db import make_engine, upgrade
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
