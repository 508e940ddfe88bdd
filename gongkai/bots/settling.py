"""What a conversation writes, and when: a session opened only if something needs it, and the
settling that commits what the next message must find and hands the rest to the backlog."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots.backlog import Backlog, Who
from gongkai.bots.cached_follower import backlog_row, columns_of, without_seen_at
from gongkai.storage.models import Follower


class LazySession:
    """The conversation's database session, opened when something first uses it (the
    follower goes into it then). A plain question never does: opening and closing an unused
    session cost a tenth of an answer."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], follower: Follower) -> None:
        self._maker = maker
        self._follower = follower
        self.real: AsyncSession | None = None

    def open(self) -> AsyncSession:
        if self.real is None:
            self.real = self._maker()
            self.real.add(self._follower)
        return self.real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.open(), name)

    async def close(self) -> None:
        if self.real is not None:
            await self.real.close()


class Settle:
    """Commits what a conversation must write now, hands the rest to the backlog.

    Called when a reply is ready (`respond` and `command` call it through the context) and
    again on the way out. Anything but the follower (a subscription, a question row offered a
    choice) or a change to the follower that the next message must see (language, village,
    a pending offer) is committed at once, a newcomer's row with it. A newcomer whose
    conversation wrote nothing else, and a known follower whose ``last_seen_at`` alone moved,
    are written by the backlog.
    """

    def __init__(
        self,
        backlog: Backlog,
        session: LazySession,
        follower: Follower,
        who: Who,
        state: tuple[Any, ...],
    ) -> None:
        self.backlog, self.session, self.follower, self.who = backlog, session, follower, who
        self.newcomer = follower.id is None
        self.mark = without_seen_at(state)
        self.seen_at = follower.last_seen_at

    async def __call__(self) -> None:
        session, follower = self.session.real, self.follower
        others = session is not None and (
            bool(session.deleted)
            or any(o is not follower for o in session.new)
            or any(o is not follower for o in session.dirty)
        )
        lasting = without_seen_at(columns_of(follower))
        flushed = self.newcomer and follower.id is not None
        if others or flushed or lasting != self.mark:
            session = self.session.open()
            if follower not in session:
                session.add(follower)
            await session.commit()
            self.newcomer = False
        else:
            if session is not None and follower in session:
                session.expunge(follower)
            if self.newcomer:
                self.backlog.follower(backlog_row(follower))
                self.newcomer = False
            elif follower.last_seen_at is not None and follower.last_seen_at != self.seen_at:
                self.backlog.seen(self.who, follower.last_seen_at)
        self.mark, self.seen_at = lasting, follower.last_seen_at
