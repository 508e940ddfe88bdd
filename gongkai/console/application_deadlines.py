"""Applications on the deadlines board, beside late items: every running application with its
due day and the working days left (or overdue), the soonest first."""

from __future__ import annotations

from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.applications import Status
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.application_queries import applications
from gongkai.web.application_models import ApplicationRow
from gongkai.web.application_present import row_of

SOON_WORKDAYS = 5  # shown as "due soon" from this many working days before the due day


async def application_deadlines(
    session: AsyncSession, calendar: WorkCalendar, today: date
) -> list[ApplicationRow]:
    """Running applications, the most urgent first."""
    running = [
        *await applications(session, status=Status.registered, limit=1000),
        *await applications(session, status=Status.handling, limit=1000),
    ]
    rows = [row_of(a, calendar, today) for a in running if a.due_on is not None]
    return sorted(rows, key=lambda r: r.workdays_left if r.workdays_left is not None else 0)
