"""Small writes a worker makes while it sends, so that a crash loses as little as possible.

- A part that must never go twice (SMS: neither provider deduplicates) gets its attempt row
  *before* the request leaves, marked ``sending``. A worker that takes the delivery over and
  finds that mark knows the part may have gone out, and does not send it blind.
- A part the provider accepted, with more parts to come, is recorded at once (``parts_done``,
  the provider's message id), so a takeover resumes after it.
- The job carrying a waiting row is written into the row (``queue.py`` says why).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.bulk import insert_rows
from gongkai.storage.models import Attempt, Delivery
from gongkai.storage.types import utcnow

if TYPE_CHECKING:
    from gongkai.dispatch.claims import Claimed, Outcome
    from gongkai.dispatch.deps import Deps

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
A = Attempt.__table__  # type: ignore[attr-defined]
# What "the database is unreachable" looks like through SQLAlchemy and the drivers.
DATABASE_DOWN = (OperationalError, InterfaceError, DBAPIError, OSError, ConnectionError)
IN_FLIGHT = "sending"  # an attempt's outcome while its request may be on the wire
_FINISH = ("finished_at", "outcome", "provider_message_id", "error", "retry_after")


async def write_attempts(session: AsyncSession, attempts: list[dict[str, Any]]) -> None:
    """Insert new attempt rows; finish the ones written before their request left."""
    fresh = [a for a in attempts if "_id" not in a]
    started = [a for a in attempts if "_id" in a]
    await insert_rows(session, A, fresh)  # one shape: send_parts fills every column
    if started:
        await session.execute(
            update(A).where(A.c.id == bindparam("_id")).values({k: bindparam(k) for k in _FINISH}),
            [{"_id": a["_id"], **{k: a[k] for k in _FINISH}} for a in started],
        )


async def mark_started(deps: Deps, attempt: dict[str, Any]) -> None:
    """Write the attempt before its request leaves; ``attempt['_id']`` then names the row."""
    async with deps.maker() as session:
        row = {k: v for k, v in attempt.items() if not k.startswith("_")}
        row["outcome"] = IN_FLIGHT
        result = await session.execute(insert(A).values(**row).returning(A.c.id))
        attempt["_id"] = result.scalar_one()
        await session.commit()


async def save_accepted(deps: Deps, d: Claimed, out: Outcome) -> None:
    """Record the parts accepted so far before the next part is sent, and renew the lease.

    On success the outcome's lists are emptied (they are in the row now), so the final record
    appends only what came after. On a database error nothing is lost: the lists stay and the
    final record writes them.
    """
    async with deps.maker() as session:
        ids, notes = (
            await session.execute(select(D.provider_message_ids, D.notes).where(D.id == d.id))
        ).one()
        await write_attempts(session, out.attempts)
        await session.execute(
            update(DELIVERY)
            .where(D.id == d.id)
            .values(
                parts_done=out.parts_done,
                attempts=D.attempts + len(out.attempts),
                provider_message_ids=[*(ids or []), *out.provider_message_ids],
                notes=[*(notes or []), *out.notes],
                lease_until=lease_end(deps),
                updated_at=utcnow(),
            )
        )
        await session.commit()
    d.attempts += len(out.attempts)
    d.parts_done = out.parts_done
    out.attempts.clear()
    out.provider_message_ids.clear()
    out.notes.clear()


def lease_end(deps: Deps, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=deps.settings.lease_seconds)


async def stamp_jobs(
    session: AsyncSession, jobs: list[tuple[str, list[int]]], **values: Any
) -> None:
    """Write each job's name (and any other columns) into the rows it carries."""
    for job, ids in jobs:
        await session.execute(
            update(DELIVERY).where(D.id.in_(ids)).values(job=job, updated_at=utcnow(), **values)
        )
