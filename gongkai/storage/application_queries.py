"""Reading applications in bulk: the office's lists and the yearly table's counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, literal, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.annual_table import AnnualTable, Counted, annual_table
from gongkai.domain.applications import OPEN_STATUSES, Outcome, Status
from gongkai.storage.applications import Application, ApplicationEvent


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
    """Section 三 of the yearly report for ``year`` (see ``domain.annual_table``), counted in
    the database: applications are grouped by type, outcome, reason and where their day of
    receipt and day closed fall (before, in or after the year), and each group stands in the
    table's rules for as many applications as it holds."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    before, after = start - timedelta(days=1), end + timedelta(days=1)
    received = case(
        (col(Application.received_on) < start, literal(-1)),
        (col(Application.received_on) <= end, literal(0)),
        else_=literal(1),
    )
    closed = case(
        (col(Application.closed_on).is_(None), literal(2)),
        (col(Application.closed_on) < start, literal(-1)),
        (col(Application.closed_on) <= end, literal(0)),
        else_=literal(1),
    )
    n = func.count()
    groups = (
        await session.exec(
            select(
                Application.applicant_type,
                received,
                closed,
                Application.outcome,
                Application.outcome_reason,
                n,
            )
            .where(
                col(Application.received_on).is_not(None),
                col(Application.received_on) <= end,
                or_(col(Application.closed_on).is_(None), col(Application.closed_on) >= start),
            )
            .group_by(
                col(Application.applicant_type),
                received,
                closed,
                col(Application.outcome),
                col(Application.outcome_reason),
            )
        )
    ).all()
    day = {-1: before, 0: start, 1: after}
    return annual_table(
        year,
        (
            Counted(kind, day[r], None if c == 2 else day[c], outcome, reason, count)
            for kind, r, c, outcome, reason, count in groups
        ),
    )


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
    if not groups:
        return []
    keys = [key for key, _ in groups]
    apps = (
        await session.exec(
            select(Application)
            .where(col(Application.subject_key).in_(keys), col(Application.received_on) >= since)
            .order_by(col(Application.id).desc())
        )
    ).all()
    by_key: dict[str, list[Application]] = {}
    for a in apps:
        by_key.setdefault(a.subject_key, []).append(a)
    out = []
    for key, n in groups:
        mine = by_key.get(key, [])
        answered = [
            a for a in mine if a.outcome in (Outcome.granted, Outcome.partial) and a.reply_text
        ]
        out.append(
            Repeated(
                subject_key=key,
                count=n,
                numbers=[a.number for a in mine],
                description=mine[0].description.split("\n【补正", 1)[0] if mine else key,
                publishable=answered[0].number if answered else None,
            )
        )
    return out


async def running_with_due_day(session: AsyncSession) -> Sequence[Application]:
    """Applications whose answer is being awaited against a due day (registered or being
    handled: a correction stops the clock, and it has no due day before receipt)."""
    return (
        await session.exec(
            select(Application)
            .where(
                col(Application.status).in_((Status.registered, Status.handling)),
                col(Application.due_on).is_not(None),
            )
            .order_by(col(Application.due_on))
        )
    ).all()


async def reminders_for(
    session: AsyncSession, applications: Sequence[Application]
) -> dict[int, list[dict[str, Any]]]:
    """The reminder events of these applications that concern their current due day, by
    application id: what was already sent, and what the console shows."""
    due = {a.id: a.due_on.isoformat() for a in applications if a.id and a.due_on}
    if not due:
        return {}
    rows = (
        await session.exec(
            select(ApplicationEvent)
            .where(
                col(ApplicationEvent.application_id).in_(list(due)),
                ApplicationEvent.step == "reminder",
            )
            .order_by(col(ApplicationEvent.id))
        )
    ).all()
    found: dict[int, list[dict[str, Any]]] = {}
    for event in rows:
        if event.detail.get("due_on") == due[event.application_id]:
            found.setdefault(event.application_id, []).append(event.detail)
    return found
