"""What the bots write after the answer has gone: question rows, first contacts, last-seen times.

Answering a resident needs nothing from the database that is not already read: the question
log, a new follower's row and the coarse ``last_seen_at`` can all wait a quarter of a second
and go in with hundreds of others, in one transaction. Writing them inside the request cost a
commit per message, and SQLite commits one at a time: that was most of the callback's time
under a burst, and all of its tail.

Nothing queued is lost on a clean stop: `Backlog.close` writes everything. While the database
refuses writes the rows are kept and tried again, up to ``MAX_QUEUED`` (then the oldest
questions go, with a warning: the answers went out regardless). Followers and last-seen times
are keyed by resident, so a burst from one resident is one row, not many.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.bulk import insert_rows
from gongkai.storage.models import Follower, Question

log = logging.getLogger(__name__)
FLUSH_EVERY = 0.25  # seconds a row waits to be written with others
BATCH = 1000  # questions per transaction
MAX_QUEUED = 20_000  # rows kept while the database refuses them
ROOM_WAIT = 1.0  # seconds a request waits for the writer to catch up before going ahead
# Past half the bound a request waits (up to ROOM_WAIT) for the writer before it is answered.

Who = tuple[str, str, str]  # platform, account, external id
WHO = "_who"  # a question row's resident, for one whose follower row is not written yet

_F = Follower.__table__  # type: ignore[attr-defined]
_Q = Question.__table__  # type: ignore[attr-defined]


class Backlog:
    """Rows waiting to be written by one background task, in batches."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], bound: int = MAX_QUEUED) -> None:
        self.maker = maker
        self.bound = bound
        self._questions: list[dict[str, Any]] = []
        self._followers: dict[Who, dict[str, Any]] = {}
        self._seen: dict[Who, datetime] = {}
        self._writer: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self._stopping = asyncio.Event()

    def __len__(self) -> int:
        return len(self._questions) + len(self._followers) + len(self._seen)

    # --- what the request path hands over ------------------------------------------------------

    def question(self, row: dict[str, Any], who: Who | None = None) -> None:
        """A question row; ``who`` names the asker when their follower id is not known yet."""
        if row.get("follower_id") is None and who is not None:
            row = {**row, WHO: who}
        self._questions.append(row)
        if len(self._questions) > self.bound:
            dropped = len(self._questions) - self.bound
            del self._questions[:dropped]
            log.warning("question log backlog full: dropped the %d oldest questions", dropped)
        self._wake()

    def follower(self, row: dict[str, Any]) -> None:
        """A resident met for the first time: their row, inserted unless one exists by then."""
        who = (row["platform"], row["account"], row["external_id"])
        self._followers.setdefault(who, row)
        self._wake()

    def seen(self, who: Who, at: datetime) -> None:
        """A known resident's new ``last_seen_at`` (never moved backwards)."""
        if who not in self._seen or self._seen[who] < at:
            self._seen[who] = at
        self._wake()

    async def room(self) -> None:
        """Wait (a little) while the backlog is over its bound: a burst slows down instead of
        queueing without end. The wait is short so that a database outage never stops
        residents getting answers."""
        if not self._room.is_set():
            try:
                await asyncio.wait_for(self._room.wait(), ROOM_WAIT)
            except TimeoutError:
                pass

    def _wake(self) -> None:
        if len(self) >= self.bound // 2:
            self._room.clear()
        if not self._closed and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_soon(), name="bot backlog")

    # --- the writer ------------------------------------------------------------------------------

    async def _write_soon(self) -> None:
        """One batch per interval: under load a batch holds many rows, never one at a time.
        While the database refuses them, tries again less and less often (up to 30 s)."""
        pause = FLUSH_EVERY
        while len(self) and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            if self._closed:
                return  # `close` writes the rest
            pause = FLUSH_EVERY if await self._write() else min(pause * 2, 30.0)

    async def flush(self) -> None:
        """Write everything queued now (tests and shutdown call this)."""
        while len(self):
            if not await self._write():
                return

    async def close(self) -> None:
        """Stop taking new work into the background and write what is queued."""
        self._closed = True
        self._stopping.set()
        if self._writer is not None:  # never cancelled: it may hold rows mid-commit
            await asyncio.gather(self._writer, return_exceptions=True)
        await self.flush()
        if len(self):
            log.error("could not store %d queued bot rows at shutdown", len(self))

    async def _write(self) -> bool:
        followers, self._followers = self._followers, {}
        seen, self._seen = self._seen, {}
        questions = self._questions[:BATCH]
        del self._questions[:BATCH]
        try:
            async with self.maker() as session:
                await _insert_followers(session, list(followers.values()))
                await _update_seen(session, seen)
                await _insert_questions(session, questions)
                await session.commit()
        except Exception:
            log.exception("could not store %d bot rows; keeping them for later", len(questions))
            for who, row in followers.items():
                self._followers.setdefault(who, row)
            for who, at in seen.items():
                self.seen(who, at)
            self._questions[:0] = questions[: max(0, self.bound - len(self._questions))]
            return False
        if len(self) < self.bound // 2:
            self._room.set()
        return True


async def _insert_followers(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn = await session.connection()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_F).on_conflict_do_nothing(
        index_elements=["platform", "account", "external_id"]
    )
    await conn.execute(stmt, rows)


async def _update_seen(session: AsyncSession, seen: dict[Who, datetime]) -> None:
    if not seen:
        return
    stmt = (
        update(_F)
        .where(
            _F.c.platform == bindparam("p"),
            _F.c.account == bindparam("a"),
            _F.c.external_id == bindparam("e"),
            or_(_F.c.last_seen_at.is_(None), _F.c.last_seen_at < bindparam("t")),
        )
        .values(last_seen_at=bindparam("t"))
    )
    conn = await session.connection()
    await conn.execute(stmt, [{"p": p, "a": a, "e": e, "t": t} for (p, a, e), t in seen.items()])


async def _insert_questions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The rows, each asker's follower id filled in (their row was written before these)."""
    if not rows:
        return
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        if WHO in row:
            platform, account, external_id = row[WHO]
            wanted[platform, account].add(external_id)
    ids: dict[Who, int] = {}
    if wanted:
        conn = await session.connection()
        found = await conn.execute(
            select(_F.c.id, _F.c.platform, _F.c.account, _F.c.external_id).where(
                or_(
                    *(
                        and_(_F.c.platform == p, _F.c.account == a, _F.c.external_id.in_(sorted(e)))
                        for (p, a), e in wanted.items()
                    )
                )
            )
        )
        ids = {(p, a, e): i for i, p, a, e in found.all()}
    done = []
    for row in rows:
        if WHO in row:
            row = dict(row)
            row["follower_id"] = ids.get(row.pop(WHO))
        done.append(row)
    await insert_rows(session, _Q, done)
