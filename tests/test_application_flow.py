"""The steps of an application on a real (SQLite) database, on fixed days of 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlmodel import select, text

from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import Channel, Status
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from tests.support import settings_for

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
SEALER = Sealer("test-secret-key")


def at(day: date, hour: int = 10) -> flow.Moment:
    return flow.Moment(datetime(day.year, day.month, day.day, hour - 8, tzinfo=UTC), TZ)


def form(**over: object) -> ApplicationIn:
    data = {
        "name": "张三丰",
        "phone": "13812345678",
        "description": "2026年乌兰木伦镇冬季供暖补贴发放名单",
        "purpose": "核实本户补贴",
        "reply_channel": "sms",
    }
    data.update(over)
    return ApplicationIn.model_validate(data)


@pytest.fixture
async def session(tmp_path):
    s = settings_for(tmp_path)
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


async def test_online_application_waits_for_confirmation_then_runs_the_clock(session) -> None:
    app, code = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.web, when=at(date(2026, 10, 3))
    )
    assert app.number == "YSQ-2026-000001" and len(code) == 8
    assert app.status == Status.submitted and app.received_on is None and app.due_on is None
    await flow.register(session, CAL, app, actor="李登记", when=at(date(2026, 10, 8)))
    assert app.received_on == date(2026, 10, 8)  # the day both sides confirmed
    assert app.due_on == date(2026, 11, 4)  # Nov 3 had the Saturday submission counted
    second, _ = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.web, when=at(date(2026, 10, 9))
    )
    assert second.number == "YSQ-2026-000002"


async def test_name_and_contact_are_sealed_and_masked(session) -> None:
    app, _ = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.web, when=at(date(2026, 10, 9))
    )
    raw = (await session.exec(text("SELECT * FROM application"))).mappings().one()
    dump = " ".join(str(v) for v in raw.values())
    assert "13812345678" not in dump and "张三丰" not in dump
    assert app.name_masked == "张**" and app.contact_masked == "138****5678"
    assert flow.applicant_of(SEALER, app) == {"name": "张三丰", "phone": "13812345678"}


async def test_visit_is_received_the_same_day_and_the_whole_workflow(session) -> None:
    app, _ = await flow.submit(
        session,
        SEALER,
        CAL,
        form(),
        channel=Channel.in_person,
        actor="窗口王",
        when=at(date(2026, 9, 25)),
    )
    assert app.status == Status.registered and app.due_on == date(2026, 10, 29)
    await flow.accept(
        session, CAL, app, actor="审核赵", handler="办理钱", when=at(date(2026, 9, 28))
    )
    await flow.extend(
        session,
        CAL,
        app,
        actor="办理钱",
        approver="张主任",
        workdays=20,
        reason="需调取档案",
        when=at(date(2026, 10, 27)),
    )
    assert app.due_on == date(2026, 11, 26)
    with pytest.raises(flow.StepRefused, match="once"):
        await flow.extend(
            session, CAL, app, actor="x", approver="张主任", workdays=1, reason="",
            when=at(date(2026, 10, 28)),
        )  # fmt: skip
    with pytest.raises(flow.StepRefused, match="reasons"):
        await flow.answer(
            session, CAL, app, actor="办理钱", outcome="withheld", reason=None,
            reply_text="", letter="", when=at(date(2026, 11, 20)),
        )  # fmt: skip
    await flow.answer(
        session, CAL, app, actor="办理钱", outcome="withheld", reason="third_party",
        reply_text="涉及第三方个人信息", letter="…", when=at(date(2026, 11, 20)),
    )  # fmt: skip
    assert app.status == Status.answered and app.closed_on == date(2026, 11, 20)
    await flow.archive(session, app, actor="档案孙", when=at(date(2026, 11, 23)))
    steps = [(e.step, e.actor) for e in await flow.events_of(session, app)]
    assert steps == [
        ("submit", "窗口王"),
        ("register", "窗口王"),
        ("review", "审核赵"),
        ("extension", "办理钱"),
        ("answer", "办理钱"),
        ("archive", "档案孙"),
    ]


async def test_correction_restarts_and_an_uncorrected_one_is_abandoned(session) -> None:
    one, _ = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.in_person, when=at(date(2026, 9, 25))
    )
    two, _ = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.in_person, when=at(date(2026, 9, 25))
    )
    for app in (one, two):
        await flow.request_correction(
            session, CAL, app, actor="审核赵", note="请写明年份", period_workdays=15,
            when=at(date(2026, 10, 9)),
        )  # fmt: skip
        assert app.status == Status.correcting and app.due_on is None
    await flow.record_correction(
        session, CAL, one, actor="窗口王", text="2026年度", when=at(date(2026, 10, 28))
    )
    # 20 working days from Oct 28, the day the corrected application came, not from Sep 25
    assert one.due_on == date(2026, 11, 25) and one.status == Status.registered
    assert "2026年度" in one.description
    with pytest.raises(flow.StepRefused, match="once"):
        await flow.request_correction(
            session, CAL, one, actor="x", note="", period_workdays=5, when=at(date(2026, 11, 3))
        )
    assert await flow.abandon_overdue(session, CAL, when=at(date(2026, 10, 29))) == []
    with pytest.raises(flow.StepRefused, match="passed"):  # the period ended on Oct 29
        await flow.record_correction(
            session, CAL, two, actor="x", text="", when=at(date(2026, 10, 30))
        )
    closed = await flow.abandon_overdue(session, CAL, when=at(date(2026, 10, 30)))
    assert [a.number for a in closed] == [two.number]
    assert (two.status, two.outcome, two.outcome_reason) == ("abandoned", "other", "no_correction")


async def test_lookup_code_opens_only_its_own_application(session) -> None:
    app, code = await flow.submit(
        session, SEALER, CAL, form(), channel=Channel.web, when=at(date(2026, 10, 9))
    )
    assert (await flow.for_applicant(session, SEALER, app.number, code)).id == app.id
    assert await flow.for_applicant(session, SEALER, app.number, code.lower()) is not None
    assert await flow.for_applicant(session, SEALER, app.number, "WRONGCOD") is None
    assert await flow.for_applicant(session, SEALER, "YSQ-2026-999999", code) is None
    stored = (await session.exec(select(Application.code_hash))).one()
    assert code not in stored


def test_the_form_refuses_what_cannot_be_answered() -> None:
    with pytest.raises(ValidationError, match="SMS"):
        form(phone="", email="a@b.cn")
    with pytest.raises(ValidationError, match="mobile"):
        form(phone="12345")
    with pytest.raises(ValidationError, match="control"):
        form(description="名单\x00")
    with pytest.raises(ValidationError):
        form(description="x" * 5001)
    with pytest.raises(ValidationError):
        form(unexpected="field")


async def test_a_step_on_a_file_changed_meanwhile_is_refused(tmp_path) -> None:
    """Two clerks open the same file; the second one's step does not overwrite the first's."""
    s = settings_for(tmp_path)
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    maker = make_sessionmaker(engine)
    async with maker() as one:
        app, _ = await flow.submit(
            one, SEALER, CAL, form(), channel=Channel.in_person, when=at(date(2026, 9, 25))
        )
    async with maker() as first, maker() as second:
        mine = await first.get(Application, app.id)
        theirs = await second.get(Application, app.id)
        await flow.accept(first, CAL, mine, actor="甲", handler="甲", when=at(date(2026, 9, 28)))
        with pytest.raises(flow.StepRefused, match="changed meanwhile"):
            await flow.request_correction(
                second, CAL, theirs, actor="乙", note="?", period_workdays=5,
                when=at(date(2026, 9, 28)),
            )  # fmt: skip
    async with maker() as check:
        stored = await check.get(Application, app.id)
        assert (stored.status, stored.handler, stored.correction_note) == ("handling", "甲", None)
        assert [e.step for e in await flow.events_of(check, stored)] == [
            "submit", "register", "review",
        ]  # fmt: skip
    await engine.dispose()
