"""The async engine, sessions and migrations."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage import json_codec

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


def make_engine(url: str) -> AsyncEngine:
    codec = {"json_serializer": json_codec.dumps, "json_deserializer": json_codec.loads}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **codec)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the web process read while a worker writes; foreign keys are off by
            # default in SQLite and we rely on them.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes of the app
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **codec)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(
    maker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with maker() as session:
        yield session


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _sqlite_dir(url: str) -> None:
    """An SQLite database's folder, made when missing (SQLite makes the file, not the folder)."""
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)


def upgrade_sync(url: str, revision: str = "head") -> None:
    _sqlite_dir(url)
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revisions(versions: Path = MIGRATIONS / "versions") -> frozenset[str]:
    """The heads of the migration scripts (revisions no other script revises), read from their
    ``revision`` and ``down_revision`` lines. Alembic would say the same (a test holds it to
    that), but importing alembic, its environment and every script costs about 0.15 s, which
    every command would pay just to learn that there is nothing to do."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in versions.glob("*.py"):
        found = dict(_REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        revised.update([down] if isinstance(down, str) else down or ())
    return frozenset(revisions - revised)


async def database_revisions(url: str) -> frozenset[str]:
    """The revisions the database's ``alembic_version`` holds; none when it has no such table
    (a fresh database). Not reaching the database raises, as alembic would."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            try:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            except DBAPIError:  # no alembic_version yet
                return frozenset()
            return frozenset(str(row[0]) for row in rows)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to ``revision``; to head, alembic runs only when the database is not already
    there, which is the usual case for a command and saves it alembic's start-up.

    Alembic's env runs its own event loop for async drivers, so give it a thread."""
    if revision == "head":
        _sqlite_dir(url)
        if await database_revisions(url) == head_revisions():
            return
    await asyncio.to_thread(upgrade_sync, url, revision)
