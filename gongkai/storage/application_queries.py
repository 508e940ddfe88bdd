"""Reading applications in bulk: the office's lists and the yearly table's counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.annual_table import AnnualTable, Counted, annual_table
from gongkai.domain.applications import OPEN_STATUSES
from gongkai.storage.applications import Application


async def applications(
    session: AsyncSession,
    *,
    status: str | None = None,
    open_only: bool = False,
    limit: int = 200,
) -> Sequence[Application]:
    """The soonest due first; those with no due day (awaiting confirmation or a correction,
    or closed) after them, oldest first."""
    conditions = []
    if status:
        conditions.append(Application.status == status)
    if open_only:
        conditions.append(col(Application.status).in_([s.value for s in OPEN_STATUSES]))
    return (
        await session.exec(
            select(Application)
            .where(*conditions)
            .order_by(
                col(Application.due_on).is_(None), col(Application.due_on), col(Application.id)
            )
            .limit(limit)
        )
    ).all()


async def annual(session: AsyncSession, year: int) -> AnnualTable:
    """Section 三 of the yearly report for ``year`` (see ``domain.annual_table``): only the
    applications that can fall in one of its rows are read."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    rows = (
        await session.exec(
            select(
                Application.applicant_type,
                Application.received_on,
                Application.closed_on,
                Application.outcome,
                Application.outcome_reason,
            ).where(
                col(Application.received_on).is_not(None),
                col(Application.received_on) <= end,
                or_(col(Application.closed_on).is_(None), col(Application.closed_on) >= start),
            )
        )
    ).all()
    return annual_table(year, (Counted(*row) for row in rows))
