"""Rows the worker writes by its fast paths read back exactly as SQLAlchemy's own would.

The worker writes attempt rows through the driver (``storage.bulk``), SQLite timestamps through
one C call (``types.UTCDateTime``) and JSON through orjson (``storage.json_codec``). Each must
leave the database as the slow path did: same text, same instants, and rows written before the
change still read back.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from sqlmodel import select

from gongkai.storage.bulk import insert_rows
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Attempt, Delivery
from tests.support import ingest, item, prepare_db, settings_for

BEIJING = timezone(timedelta(hours=8))


async def _one_delivery(s, redis_url: str) -> int:  # type: ignore[no-untyped-def]
    await prepare_db(s)
    await ingest(s, redis_url, item())
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return (await session.exec(select(Delivery.id))).first()  # type: ignore[return-value]
    finally:
        await engine.dispose()


async def _bulk_rows_read_back(s, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    delivery_id = await _one_delivery(s, redis_url)
    started = datetime(2026, 11, 24, 9, 30, 0, 0, tzinfo=BEIJING)  # 01:30 UTC, no microseconds
    finished = datetime(2026, 11, 24, 1, 30, 2, 250_000, tzinfo=UTC)
    rows = [
        {
            "delivery_id": delivery_id,
            "number": 1,
            "part_index": 0,
            "started_at": started,
            "finished_at": finished,
            "outcome": "transient",
            "provider_message_id": None,
            "error": "机器人忙：45009 api freq out of limit",
            "retry_after": 12.5,
        },
        {
            "delivery_id": delivery_id,
            "number": 2,
            "part_index": 0,
            "started_at": finished,
            "finished_at": None,
            "outcome": "delivered",
            "provider_message_id": "msg-2",
            "error": None,
            "retry_after": None,
        },
    ]
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await insert_rows(session, Attempt.__table__, rows)  # type: ignore[attr-defined]
            await session.commit()
        async with make_sessionmaker(engine)() as session:
            stored = (
                await session.exec(
                    select(Attempt)
                    .where(Attempt.delivery_id == delivery_id, Attempt.number > 0)
                    .order_by(Attempt.number)
                )
            ).all()
    finally:
        await engine.dispose()
    got = [{k: getattr(a, k) for k in rows[0]} for a in stored[-2:]]
    assert got == rows  # aware datetimes compare by instant: 09:30+08:00 == 01:30Z
    assert got[0]["started_at"].tzinfo is not None


async def test_attempts_written_in_bulk_read_back_on_sqlite(tmp_path, embedded_redis_url) -> None:
    await _bulk_rows_read_back(settings_for(tmp_path), embedded_redis_url)


@pytest.mark.postgres
async def test_attempts_written_in_bulk_read_back_on_postgresql(
    tmp_path, postgres_url, embedded_redis_url
) -> None:
    name = f"bulk_{uuid.uuid4().hex[:8]}"  # its own database: others share this server
    engine = make_engine(postgres_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    await _bulk_rows_read_back(settings_for(tmp_path, database_url=url), embedded_redis_url)


async def test_sqlite_timestamps_keep_sqlalchemys_text(tmp_path, embedded_redis_url) -> None:
    """Old rows and new rows must sort and compare alike in SQL, so the text is the same."""
    s = settings_for(tmp_path)
    delivery_id = await _one_delivery(s, embedded_redis_url)
    when = datetime(2026, 11, 24, 9, 0, 0, 0, tzinfo=BEIJING)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            session.add(
                Attempt(delivery_id=delivery_id, number=7, started_at=when, outcome="delivered")
            )
            await session.commit()
        path = s.resolved_database_url.split("///", 1)[1]
        with sqlite3.connect(path) as raw:
            (stored,) = raw.execute("SELECT started_at FROM attempt WHERE number = 7").fetchone()
            # a row as SQLAlchemy's own DateTime wrote it, before this type had a fast path
            dialect = sqlite.dialect()
            legacy = DateTime().dialect_impl(dialect).bind_processor(dialect)
            assert legacy is not None
            raw.execute(
                "INSERT INTO attempt (delivery_id, number, part_index, started_at, outcome)"
                " VALUES (?, 8, 0, '2026-11-24 01:00:00', 'delivered')",
                (delivery_id,),
            )
        assert stored == legacy(when.astimezone(UTC).replace(tzinfo=None))
        assert stored == "2026-11-24 01:00:00.000000"
        async with make_sessionmaker(engine)() as session:
            eight = (await session.exec(select(Attempt).where(Attempt.number == 8))).one()
            assert eight.started_at == when  # a value without a fraction still reads
            session.add(
                Attempt(
                    delivery_id=delivery_id,
                    number=9,
                    started_at=datetime(2026, 11, 24, 1, 0),  # naive: whose time is it?
                    outcome="delivered",
                )
            )
            with pytest.raises(StatementError, match="naive datetime"):
                await session.commit()
    finally:
        await engine.dispose()


async def test_json_columns_are_utf8_and_read_old_escaped_rows(
    tmp_path, embedded_redis_url
) -> None:
    s = settings_for(tmp_path)
    delivery_id = await _one_delivery(s, embedded_redis_url)
    path = s.resolved_database_url.split("///", 1)[1]
    with sqlite3.connect(path) as raw:
        (payload,) = raw.execute(
            "SELECT payload FROM delivery WHERE id = ?", (delivery_id,)
        ).fetchone()
        assert "低保" in payload  # stored as UTF-8, not \\u4f4e\\u4fdd
        old = json.dumps({"parts": [{"text": "停水通知"}], "meta": {1: "一"}})  # as json wrote it
        assert "\\u505c" in old
        raw.execute("UPDATE delivery SET payload = ? WHERE id = ?", (old, delivery_id))
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            row = await session.get(Delivery, delivery_id)
            assert row is not None
            assert row.payload == {"parts": [{"text": "停水通知"}], "meta": {"1": "一"}}
            row.payload = {"meta": {2: "二"}}  # integer keys become strings, as with json
            await session.commit()
            await session.refresh(row)
            assert row.payload == {"meta": {"2": "二"}}
    finally:
        await engine.dispose()
