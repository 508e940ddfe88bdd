"""Reading applications in bulk: the office's lists and the yearly table's counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.annual_table import AnnualTable, Counted, annual_table
from gongkai.domain.applications import OPEN_STATUSES, Outcome
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


@dataclass
class Repeated:
    """The same information applied for by several applicants: a candidate for proactive
    disclosure (依申请公开的人数和频次达到一定范围的文件…转为主动公开, seeds 000 and 003)."""

    subject_key: str
    count: int
    numbers: list[str]
    description: str
    publishable: str | None  # the latest application answered 予以公开 or 部分公开, if any


async def repeated_subjects(
    session: AsyncSession, *, since: date, threshold: int
) -> list[Repeated]:
    """Subjects received at least ``threshold`` times since ``since``, most applied for first.
    Two descriptions are the same subject when they agree letter for letter once width, case
    and punctuation are set aside (``application_flow.subject_key``)."""
    count = func.count(col(Application.id))
    groups = (
        await session.exec(
            select(Application.subject_key, count)
            .where(col(Application.received_on) >= since, Application.subject_key != "")
            .group_by(col(Application.subject_key))
            .having(count >= threshold)
            .order_by(count.desc())
            .limit(50)
        )
    ).all()
    out = []
    for key, n in groups:
        apps = (
            await session.exec(
                select(Application)
                .where(Application.subject_key == key, col(Application.received_on) >= since)
                .order_by(col(Application.id).desc())
            )
        ).all()
        answered = [
            a for a in apps if a.outcome in (Outcome.granted, Outcome.partial) and a.reply_text
        ]
        out.append(
            Repeated(
                subject_key=key,
                count=n,
                numbers=[a.number for a in apps],
                description=apps[0].description.split("\n【补正", 1)[0],
                publishable=answered[0].number if answered else None,
            )
        )
    return out
