"""The deadlines board (domain rules 1 and 2): late items and policies still without a 解读.

Overdue is counted in working days on the official calendar, as the rules themselves count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.console.application_deadlines import SOON_WORKDAYS, application_deadlines
from gongkai.console.console_queries import now_local, shown_statuses
from gongkai.console.render import page
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.models import Item, ItemStatus
from gongkai.web.keys import CALENDAR, MAKER, SETTINGS

routes = web.RouteTableDef()


@dataclass
class Overdue:
    item: Item
    due: date
    reference: date  # published on, or today while still unpublished
    published: bool
    workdays_late: int


async def late_items(
    session: AsyncSession, calendar: WorkCalendar, today: date, tz: object
) -> list[Overdue]:
    """Put online after publish_due, or still not online with publish_due behind us."""
    rows = (
        await session.exec(
            select(Item)
            .where(col(Item.publish_due) < today, Item.status != ItemStatus.recalled)
            .order_by(col(Item.publish_due))
        )
    ).all()
    out = []
    for item in rows:
        assert item.publish_due is not None
        published = item.published_at is not None
        reference = item.published_at.astimezone(tz).date() if item.published_at else today  # type: ignore[arg-type]
        if item.publish_due < reference:
            out.append(
                Overdue(
                    item,
                    item.publish_due,
                    reference,
                    published,
                    calendar.workdays_between(item.publish_due, reference),
                )
            )
    return sorted(out, key=lambda o: -o.workdays_late)


async def policies_without_interpretation(
    session: AsyncSession, calendar: WorkCalendar, today: date
) -> list[Overdue]:
    interpreted = select(Item.interprets).where(
        col(Item.interprets).is_not(None), Item.status != ItemStatus.recalled
    )
    rows = (
        await session.exec(
            select(Item)
            .where(
                Item.kind == "policy",
                Item.status != ItemStatus.recalled,
                col(Item.interpretation_due) < today,
                col(Item.id).not_in(interpreted),
            )
            .order_by(col(Item.interpretation_due))
        )
    ).all()
    out = [
        Overdue(
            p,
            p.interpretation_due,
            today,
            p.published_at is not None,  # type: ignore[arg-type]
            calendar.workdays_between(p.interpretation_due, today),
        )  # type: ignore[arg-type]
        for p in rows
    ]
    return sorted(out, key=lambda o: -o.workdays_late)


@routes.get("/admin/deadlines")
async def deadlines(request: web.Request) -> web.Response:
    tz = request.app[SETTINGS].tz
    calendar = request.app[CALENDAR]
    today = now_local(tz).date()
    async with request.app[MAKER]() as session:
        late = await late_items(session, calendar, today, tz)
        uninterpreted = await policies_without_interpretation(session, calendar, today)
        shown = await shown_statuses(session, [o.item for o in late])
        applications = await application_deadlines(session, calendar, today)
    return await page(
        request,
        "deadlines.html.j2",
        active="deadlines",
        today=today,
        late=late,
        uninterpreted=uninterpreted,
        shown=shown,
        applications=applications,
        soon=SOON_WORKDAYS,
    )
