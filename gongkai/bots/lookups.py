"""Followers read from the database in batches, for the residents Redis has no copy of.

A burst of questions after a notice comes from residents the bot has not heard from in the
last ten minutes (or ever): each would cost a query of its own, one after the other on
SQLite. Instead every resident looked up while a query is under way waits for the next one,
and that one asks for all of them at once.

On SQLite the query goes to aiosqlite in one call (statement, rows and cursor in one trip to
its thread) instead of SQLAlchemy's four: each trip is a thread hand-off, and a burst of
newcomers made those hand-offs a tenth of the callback's CPU. The rows are converted by the
column types' own SQLite result processors, so they are what SQLAlchemy would have returned.
The connection is kept between reads: handing it back to the pool costs a rollback, another
trip. It never holds a transaction (a SELECT outside one reads the latest commit in WAL mode),
so what it reads is as fresh as a new connection's.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots.backlog import Who
from gongkai.storage.models import Follower

_F = Follower.__table__  # type: ignore[attr-defined]
MAX_BATCH = 500  # residents per query (SQLite allows 32,766 parameters)
# How long a read waits for others to join it: a burst answers ~1,000 messages a second, so a
# millisecond gathers a few, which share one query's round trips instead of a query each.
GATHER = 0.001
# One statement, built once: SQLAlchemy compiles it once and expands the list per call.
_SELECT = select(_F).where(
    _F.c.platform == bindparam("p"),
    _F.c.account == bindparam("a"),
    _F.c.external_id.in_(bindparam("ids", expanding=True)),
)


class FollowerReads:
    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        bind = maker.kw["bind"]
        assert isinstance(bind, AsyncEngine)
        self.engine = bind
        self._waiting: dict[Who, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._reader: asyncio.Task[None] | None = None  # one at a time: it owns _kept
        self._kept: AsyncConnection | None = None

    async def get(self, who: Who) -> dict[str, Any] | None:
        """The follower row's columns, or None for a resident never stored."""
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(who, []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="follower reads")
        return await future

    async def _read(self) -> None:
        await asyncio.sleep(GATHER)  # residents asking meanwhile join this read
        while self._waiting:
            wanted = list(self._waiting)[:MAX_BATCH]
            batch = {who: self._waiting.pop(who) for who in wanted}
            try:
                rows = await self._select(wanted)
            except Exception as exc:  # each waiting request fails as its own query would have
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for who, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(rows.get(who))

    async def _select(self, wanted: list[Who]) -> dict[Who, dict[str, Any]]:
        by_account: dict[tuple[str, str], list[str]] = defaultdict(list)
        for platform, account, external_id in wanted:
            by_account[platform, account].append(external_id)
        found: dict[Who, dict[str, Any]] = {}
        if self.engine.dialect.name == "sqlite":
            return await self._select_sqlite(by_account)
        async with self.engine.connect() as conn:
            for (platform, account), ids in by_account.items():
                rows = await conn.execute(_SELECT, {"p": platform, "a": account, "ids": ids})
                for row in rows.mappings():
                    found[platform, account, row["external_id"]] = dict(row)
        return found

    async def _select_sqlite(
        self, by_account: dict[tuple[str, str], list[str]]
    ) -> dict[Who, dict[str, Any]]:
        dialect = self.engine.dialect
        convert = [
            (c.name, c.type.dialect_impl(dialect).result_processor(dialect, None))
            for c in _F.columns
        ]
        found: dict[Who, dict[str, Any]] = {}
        if self._kept is None:
            self._kept = await self.engine.connect()
        try:
            raw = await self._kept.get_raw_connection()
            driver = raw.driver_connection  # the aiosqlite connection
            assert driver is not None
            for (platform, account), ids in by_account.items():
                marks = ",".join("?" * len(ids))
                rows = await driver.execute_fetchall(
                    _SQLITE_SELECT.format(marks=marks), (platform, account, *ids)
                )
                for values in rows:
                    row = {
                        name: value if process is None or value is None else process(value)
                        for (name, process), value in zip(convert, values, strict=True)
                    }
                    found[platform, account, row["external_id"]] = row
        except Exception:
            await self._drop()  # the next read starts on a fresh connection
            raise
        return found

    async def close(self) -> None:
        """Hand the kept connection back (before the engine is disposed)."""
        if self._reader is not None and not self._reader.done():
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._drop()

    async def _drop(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept.close()


_COLUMNS = ", ".join(f'"{c.name}"' for c in _F.columns)
_SQLITE_SELECT = (
    f"SELECT {_COLUMNS} FROM {_F.name} "
    "WHERE platform = ? AND account = ? AND external_id IN ({marks})"
)
