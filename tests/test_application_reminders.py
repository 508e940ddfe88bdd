"""The handler's reminders before an answer falls due, on a frozen clock across the 2026
National Day holiday: received on 8 September, the answer is due on Monday 12 October, and
"three working days before" is Thursday 8 October, the first working day after the holiday
(a count of plain weekdays would have said Wednesday the 7th, a holiday). Each reminder is
recorded once, and goes by SMS (the Aliyun fake) to a handler who has a mobile number."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import Channel
from gongkai.domain.request_clock import reminder_kind
from gongkai.domain.workdays import WorkCalendar
from gongkai.sandbox import aliyun_sms
from gongkai.sandbox.server import serve
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import ApplicationEvent
from tests.support import prepare_db, settings_for

CAL = WorkCalendar()
TEMPLATE = "您承办的政府信息公开申请${number}${status}，请及时答复。"
HANDLER_PHONE = "13700001111"


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour - 8, tzinfo=UTC)  # Beijing time


def test_reminder_kinds() -> None:
    assert [reminder_kind(n, 3) for n in (None, 5, 4, 3, 1, 0, -2)] == [
        None, None, None, "soon", "soon", "due", "due"
    ]  # fmt: skip
    assert reminder_kind(1, 0) is None  # no early reminder, the due day's only


@pytest.fixture
async def county(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    from gongkai.dispatch.worker import close_deps, open_deps

    fake, sms = aliyun_sms.make_app(templates={"SMS_REMIND": TEMPLATE})
    async with serve(fake) as base:
        s = settings_for(
            tmp_path,
            aliyun_sms_endpoint=base,
            applications_remind_sms_template="SMS_REMIND",
            applications_remind_phones=f"办理钱={HANDLER_PHONE}, 其他人=13700002222",
        )
        await prepare_db(s)
        deps, engine = open_deps(s, embedded_redis_url)
        try:
            yield deps, sms
        finally:
            await close_deps(deps, engine)


async def received_on(deps, day: date, handler: str | None) -> str:  # type: ignore[no-untyped-def]
    form = ApplicationIn.model_validate(
        {"name": "张三丰", "phone": "13812345678", "description": "供暖补贴名单",
         "reply_channel": "post", "address": "某街1号"}
    )  # fmt: skip
    when = flow.Moment(at(day), deps.settings.tz)
    async with deps.maker() as session:
        app, _ = await flow.submit(
            session, deps.sealer, CAL, form, channel=Channel.in_person, when=when
        )
        if handler:
            app = await flow.accept(session, CAL, app, actor="审核赵", handler=handler, when=when)
        assert app.due_on == date(2026, 10, 12)
        return app.number


async def test_reminders_across_the_national_day_holiday(county) -> None:
    from gongkai.dispatch.application_reminders import remind_handlers

    deps, sms = county
    handled = await received_on(deps, date(2026, 9, 8), "办理钱")
    unassigned = await received_on(deps, date(2026, 9, 8), None)
    made: dict[date, list[tuple[str, str, int]]] = {}
    day = date(2026, 9, 28)
    while day <= date(2026, 10, 14):
        for hour in (9, 15):  # two rounds a day: the second finds the first's events
            for r in await remind_handlers(deps, CAL, now=at(day, hour)):
                made.setdefault(day, []).append((r.number, r.kind, r.workdays_left))
        day += timedelta(days=1)
    assert made == {
        date(2026, 10, 8): [(handled, "soon", 3), (unassigned, "soon", 3)],
        date(2026, 10, 12): [(handled, "due", 0), (unassigned, "due", 0)],
    }
    assert sms.texts_to(HANDLER_PHONE) == [
        f"【伊金霍洛旗政务公开】您承办的政府信息公开申请{handled}{status}，请及时答复。"
        for status in ("3个工作日后到期", "今天到期")
    ]
    assert len(sms.messages) == 2  # nobody to text about the unassigned one
    async with deps.maker() as session:
        events = (
            await session.exec(select(ApplicationEvent).where(ApplicationEvent.step == "reminder"))
        ).all()
    assert len(events) == 4
    sent = [e.detail for e in events if e.detail.get("handler") == "办理钱"]
    assert [d["sms_message_id"] for d in sent] == [m.biz_id for m in sms.messages]


async def test_an_extension_earns_new_reminders(county) -> None:
    from gongkai.dispatch.application_reminders import remind_handlers

    deps, _ = county
    number = await received_on(deps, date(2026, 9, 8), "办理钱")
    assert [r.kind for r in await remind_handlers(deps, CAL, now=at(date(2026, 10, 12)))] == ["due"]
    async with deps.maker() as session:
        app = await flow.by_number(session, number)
        assert app is not None
        app = await flow.extend(
            session,
            CAL,
            app,
            actor="办理钱",
            approver="张主任",
            workdays=5,
            reason="需要调取档案",
            when=flow.Moment(at(date(2026, 10, 12)), deps.settings.tz),
        )
        assert app.due_on == date(2026, 10, 19)
    again = await remind_handlers(deps, CAL, now=at(date(2026, 10, 14)))
    assert [(r.kind, r.due_on, r.workdays_left) for r in again] == [("soon", "2026-10-19", 3)]
