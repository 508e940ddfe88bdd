"""Reminding the handler of an application before its answer falls due (条例 art. 33: 20
working days, or 40 extended): ``GONGKAI_APPLICATIONS_REMIND_DAYS`` working days before the due
day, and on it.

A round runs in the worker beside reconciliation, in one worker at a time (a Redis lock, like
reconciliation's). Each reminder is an event of the application (step ``reminder``, with its
kind and the due day), recorded once per application, kind and due day: a later round, another
worker or a restart finds the event and does not remind again; an extension moves the due day
and so earns new reminders. The console's applications list shows the reminders of the current
due days.

When the application has a handler (承办人) with a mobile number in
``GONGKAI_APPLICATIONS_REMIND_PHONES`` and ``GONGKAI_APPLICATIONS_REMIND_SMS_TEMPLATE`` names an
approved template, the reminder also goes to them by SMS through the county's SMS account: the
smallest mechanism that reaches a clerk away from the console, with no new table or account
kind. Its outcome is in the event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import ChannelError
from gongkai.dispatch.application_notice import NoticeUnavailable, send_sms
from gongkai.dispatch.deps import Deps
from gongkai.domain.request_clock import local_day, reminder_kind
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.application_queries import reminders_for, running_with_due_day
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

REMIND_EVERY = 900.0  # seconds between rounds: a reminder is at most a quarter of an hour late
LOCK = "gongkai:applications:remind-lock"


@dataclass
class Reminder:
    number: str
    kind: str  # soon | due
    due_on: str
    workdays_left: int
    handler: str | None
    detail: dict[str, object]


def handler_phones(setting: str) -> dict[str, str]:
    """``"张三=13800000000, 李四=13900000001"`` → {name: mobile}."""
    phones: dict[str, str] = {}
    for pair in setting.split(","):
        name, sep, phone = pair.partition("=")
        if sep and name.strip() and phone.strip():
            phones[name.strip()] = phone.strip()
    return phones


def reminder_text(kind: str, workdays_left: int) -> str:
    if kind == "soon":
        return f"{workdays_left}个工作日后到期"
    if workdays_left == 0:
        return "今天到期"
    return f"已逾期{-workdays_left}个工作日"


async def remind_handlers(
    deps: Deps, calendar: WorkCalendar, now: datetime | None = None
) -> list[Reminder]:
    """One round: record (and send) the reminders owed at ``now``; returns those made."""
    now = now or utcnow()
    today = local_day(now, deps.settings.tz)
    days = deps.settings.applications_remind_days
    phones = handler_phones(deps.settings.applications_remind_phones)
    made: list[Reminder] = []
    async with deps.maker() as session:
        running = await running_with_due_day(session)
        earlier = await reminders_for(session, running)
        for app in running:
            assert app.due_on is not None and app.id is not None
            left = calendar.workdays_between(today, app.due_on)
            kind = reminder_kind(left, days)
            if kind is None or any(e.get("kind") == kind for e in earlier.get(app.id, [])):
                continue
            status = reminder_text(kind, left)
            detail: dict[str, object] = {
                "kind": kind,
                "due_on": app.due_on.isoformat(),
                "workdays_left": left,
                "text": status,
                "handler": app.handler,
            }
            await _send(deps, session, app, kind, status, phones, detail)
            session.add(
                ApplicationEvent(
                    application_id=app.id, at=now, actor="system", step="reminder", detail=detail
                )
            )
            await session.commit()  # one by one: a crash re-sends at most one SMS
            made.append(
                Reminder(app.number, kind, app.due_on.isoformat(), left, app.handler, detail)
            )
    return made


async def _send(
    deps: Deps,
    session: AsyncSession,
    app: Application,
    kind: str,
    status: str,
    phones: dict[str, str],
    detail: dict[str, object],
) -> None:
    template = deps.settings.applications_remind_sms_template
    phone = phones.get(app.handler or "")
    if not template or phone is None:
        return  # shown on the console only
    try:
        notice = await send_sms(
            session,
            deps.sealer,
            deps.settings,
            deps.http,
            phone=phone,
            template=template,
            number=app.number,
            status=status,
            link=f"{deps.settings.public_url.rstrip('/')}/admin/applications/{app.number}",
            tag=f"{app.number}-{kind}-{str(detail['due_on']).replace('-', '')}",
        )
        detail["sms_message_id"] = notice.provider_message_id
    except (NoticeUnavailable, ChannelError) as exc:
        log.warning("application %s: reminder SMS not sent: %s", app.number, exc)
        detail["sms_error"] = str(exc)[:500]


async def remind_forever(deps: Deps) -> None:
    """The worker's reminder round; survives Redis and database outages by trying later."""
    calendar = WorkCalendar.from_file(deps.settings.holidays_file)
    first = True
    while True:
        await asyncio.sleep(
            random.uniform(1, 5) if first else REMIND_EVERY * random.uniform(0.8, 1.2)
        )
        first = False
        try:
            if not await deps.pool.set(LOCK, deps.worker_id, nx=True, px=int(REMIND_EVERY * 800)):
                continue  # another worker reminds this round
            await remind_handlers(deps, calendar)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("application reminders skipped: %s: %s", type(exc).__name__, exc)
