"""The steps of an application: 登记 → 审核 → (补正) → 办理 → 答复 → 归档, each a transaction that
checks the step is allowed from where the application stands, records who took it, and keeps the
due day (``request_clock``) current for the lists and the board.

The callers (the API, the console, the bots, the CLI) pass the moment and the county's time
zone; nothing here reads the clock itself, so every rule can be tested on fixed days.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.application_form import ApplicationIn, mask_contact, mask_name
from gongkai.domain.applications import (
    CONFIRMED_BY_CLERK,
    Channel,
    Number,
    Outcome,
    Status,
    outcome_problem,
)
from gongkai.domain.request_clock import (
    Clock,
    ClockRefused,
    Correction,
    Extension,
    clock,
    local_day,
    receipt_day,
)
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.crypto import Sealer
from gongkai.storage.types import utcnow

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud, typed on a phone
CODE_LENGTH = 8
_DUMMY_NUMBER = "YSQ-0000-000000"


class StepRefused(Exception):
    """The step is not allowed from where the application stands (answered twice, extended
    twice, …); the message says why in Chinese and English."""


@dataclass
class Moment:
    """When a step is taken, on the county's calendar."""

    at: datetime
    tz: tzinfo

    @property
    def day(self) -> date:
        return local_day(self.at, self.tz)


def now_in(tz: tzinfo) -> Moment:
    return Moment(utcnow(), tz)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_digest(sealer: Sealer, number: str, code: str) -> str:
    return sealer.lookup_key("application-code", number, code.strip().upper())


def subject_key(description: str) -> str:
    """The description reduced to letters and digits, for "the same information applied for
    by several residents": width, case and punctuation do not make two subjects."""
    text = unicodedata.normalize("NFKC", description).lower()
    kept = "".join(ch for ch in text if ch.isalnum())
    return kept[:64]


def clock_of(app: Application, calendar: WorkCalendar, today: date | None = None) -> Clock:
    correction = None
    if app.correction_requested_on is not None:
        correction = Correction(
            requested_on=app.correction_requested_on,
            period_workdays=app.correction_period or 15,
            corrected_on=app.corrected_on,
        )
    extension = None
    if app.extension_workdays is not None:
        extension = Extension(
            approver=app.extension_approver or "",
            workdays=app.extension_workdays,
            notified_on=app.extension_notified_on or app.received_on or app.handed_in_on,
            reason=app.extension_reason or "",
        )
    return clock(
        calendar, received=app.received_on, correction=correction, extension=extension, today=today
    )


async def _commit(session: AsyncSession) -> None:
    """Commit a step; a file another step changed meanwhile is refused, not overwritten."""
    try:
        await session.commit()
    except StaleDataError:
        await session.rollback()
        raise StepRefused(
            "此申请刚被他人办理过，请刷新后再办理 / changed meanwhile: reload and try again"
        ) from None


async def _event(
    session: AsyncSession, app: Application, actor: str, step: str, when: Moment, **detail: Any
) -> None:
    assert app.id is not None
    session.add(
        ApplicationEvent(application_id=app.id, at=when.at, actor=actor, step=step, detail=detail)
    )


def _require(app: Application, *allowed: Status) -> None:
    if app.status not in allowed:
        wanted = "/".join(s.value for s in allowed)
        raise StepRefused(
            f"申请当前状态为 {app.status}，此步骤需 {wanted} / not allowed from {app.status}"
        )


def _refresh_due(app: Application, calendar: WorkCalendar, when: Moment) -> Clock:
    try:
        c = clock_of(app, calendar, when.day)
    except ClockRefused as exc:
        raise StepRefused(str(exc)) from exc
    app.due_on = c.due if not c.waiting_for_correction else None
    app.updated_at = when.at
    return c


async def submit(
    session: AsyncSession,
    sealer: Sealer,
    calendar: WorkCalendar,
    form: ApplicationIn,
    *,
    channel: Channel,
    when: Moment,
    actor: str = "applicant",
    handed_in_on: date | None = None,
    follower_id: int | None = None,
) -> tuple[Application, str]:
    """A new application and its lookup code (shown once, stored only as a digest).

    Online it waits for the office's confirmation (``submitted``, no clock yet); registered by
    a clerk (a visit, a letter, a fax) it is received at once: on the day handed in for a visit
    or registered mail, on the clerk's confirmation (today) otherwise."""
    handed = handed_in_on or when.day
    by_clerk = channel in CONFIRMED_BY_CLERK
    received = receipt_day(channel, handed_in=handed, confirmed=when.day if by_clerk else None)
    contact = form.contact()
    code = new_code()
    for _ in range(5):
        year = handed.year
        last = (
            await session.exec(
                select(func.max(Application.sequence)).where(Application.year == year)
            )
        ).one()
        number = str(Number(year, (last or 0) + 1))
        app = Application(
            number=number,
            year=year,
            sequence=(last or 0) + 1,
            code_hash=code_digest(sealer, number, code),
            applicant_type=form.applicant_type,
            name_sealed=sealer.seal(form.name),
            name_masked=mask_name(form.name),
            contact_sealed=sealer.seal(contact),
            contact_masked=mask_contact(contact),
            description=form.description,
            purpose=form.purpose,
            language=form.language,
            channel=channel,
            reply_channel=form.reply_channel,
            follower_id=follower_id,
            subject_key=subject_key(form.description),
            status=Status.registered if received else Status.submitted,
            handed_in_at=when.at,
            handed_in_on=handed,
            confirmed_on=when.day if by_clerk else None,
            received_on=received,
            created_at=when.at,
            updated_at=when.at,
        )
        session.add(app)
        try:
            await session.flush()
        except IntegrityError:  # another application took the number: take the next
            await session.rollback()
            continue
        _refresh_due(app, calendar, when)
        await _event(session, app, actor, "submit", when, channel=channel.value)
        if received:
            await _event(session, app, actor, "register", when, received_on=received.isoformat())
        await session.commit()
        return app, code
    raise StepRefused("编号冲突，请重试 / could not allocate a number, try again")


async def register(
    session: AsyncSession, calendar: WorkCalendar, app: Application, *, actor: str, when: Moment
) -> Application:
    """登记: the office confirms an online application; that day is the day of receipt."""
    _require(app, Status.submitted)
    app.confirmed_on = when.day
    app.received_on = receipt_day(app.channel, handed_in=app.handed_in_on, confirmed=when.day)
    app.status = Status.registered
    _refresh_due(app, calendar, when)
    await _event(session, app, actor, "register", when, received_on=str(app.received_on))
    await _commit(session)
    return app


async def accept(
    session: AsyncSession,
    calendar: WorkCalendar,
    app: Application,
    *,
    actor: str,
    handler: str,
    when: Moment,
) -> Application:
    """审核 passed: the application is clear enough and goes to a handler (办理)."""
    _require(app, Status.registered)
    app.status = Status.handling
    app.handler = handler
    _refresh_due(app, calendar, when)
    await _event(session, app, actor, "review", when, decision="accept", handler=handler)
    await _commit(session)
    return app


async def request_correction(
    session: AsyncSession,
    calendar: WorkCalendar,
    app: Application,
    *,
    actor: str,
    note: str,
    period_workdays: int,
    when: Moment,
) -> Application:
    """补正: one request, naming what to correct and by when; the clock waits."""
    _require(app, Status.registered, Status.handling)
    if app.correction_requested_on is not None:
        raise StepRefused("补正只能一次性告知 / a correction may be asked for only once")
    app.correction_requested_on = when.day
    app.correction_period = period_workdays
    app.correction_note = note
    app.status = Status.correcting
    c = _refresh_due(app, calendar, when)
    await _event(
        session,
        app,
        actor,
        "correction_requested",
        when,
        note=note,
        until=str(c.correction_until),
        warnings=c.warnings,
    )
    await _commit(session)
    return app


async def record_correction(
    session: AsyncSession,
    calendar: WorkCalendar,
    app: Application,
    *,
    actor: str,
    text: str,
    when: Moment,
) -> Application:
    """The corrected application arrived: the 20 working days start again from today."""
    _require(app, Status.correcting)
    c = clock_of(app, calendar, when.day)
    if c.abandoned:
        raise StepRefused("补正期限已过，申请视为放弃 / the correction period has passed")
    app.corrected_on = when.day
    if text:
        app.description = f"{app.description}\n【补正 {when.day.isoformat()}】{text}"
    app.status = Status.registered
    _refresh_due(app, calendar, when)
    await _event(session, app, actor, "corrected", when, text=text, due=str(app.due_on))
    await _commit(session)
    return app


async def extend(
    session: AsyncSession,
    calendar: WorkCalendar,
    app: Application,
    *,
    actor: str,
    approver: str,
    workdays: int,
    reason: str,
    when: Moment,
) -> Application:
    """延期: once, at most 20 working days, with the approver named; the applicant is told
    (the caller sends the notice; today is recorded as the day of the notice)."""
    _require(app, Status.registered, Status.handling)
    if app.extension_workdays is not None:
        raise StepRefused("答复期限只能延长一次 / the answer may be extended only once")
    app.extension_approver = approver
    app.extension_workdays = workdays
    app.extension_reason = reason
    app.extension_notified_on = when.day
    try:
        c = _refresh_due(app, calendar, when)
    except StepRefused:
        app.extension_approver = app.extension_workdays = app.extension_reason = None
        app.extension_notified_on = None
        raise
    await _event(
        session,
        app,
        actor,
        "extension",
        when,
        approver=approver,
        workdays=workdays,
        reason=reason,
        due=str(app.due_on),
        warnings=c.warnings,
    )
    await _commit(session)
    return app


async def answer(
    session: AsyncSession,
    calendar: WorkCalendar,
    app: Application,
    *,
    actor: str,
    outcome: str,
    reason: str | None,
    reply_text: str,
    letter: str,
    attachments: list[dict[str, Any]] | None = None,
    when: Moment,
) -> Application:
    """答复: the outcome as the yearly report counts it, and the letter sent to the applicant."""
    _require(app, Status.registered, Status.handling)
    problem = outcome_problem(outcome, reason or None)
    if problem:
        raise StepRefused(problem)
    app.outcome = outcome
    app.outcome_reason = reason or None
    app.reply_text = reply_text
    app.reply_letter = letter
    if attachments is not None:
        app.attachments = list(attachments)
    app.status = Status.answered
    app.closed_on = when.day
    app.handler = app.handler or actor
    c = _refresh_due(app, calendar, when)
    late = -(c.workdays_left(calendar, when.day) or 0) if c.due and when.day > c.due else 0
    await _event(
        session, app, actor, "answer", when, outcome=outcome, reason=reason, late_workdays=late
    )
    await _commit(session)
    return app


async def archive(
    session: AsyncSession, app: Application, *, actor: str, when: Moment
) -> Application:
    """归档: the file is closed; nothing changes after this."""
    _require(app, Status.answered, Status.abandoned)
    app.status = Status.archived
    app.updated_at = when.at
    await _event(session, app, actor, "archive", when)
    await _commit(session)
    return app


async def abandon_overdue(
    session: AsyncSession, calendar: WorkCalendar, *, when: Moment, actor: str = "system"
) -> list[Application]:
    """Applications whose correction period passed without a correction (视为放弃): closed as
    其他处理 — 逾期不补正, the row of the yearly table they are counted in.

    Run wherever applications are listed or counted (the API's and the console's lists, the
    yearly table, ``gongkai report annual``) rather than by a timer: whoever looks sees them
    closed, and closing twice changes nothing."""
    waiting = (
        await session.exec(select(Application).where(Application.status == Status.correcting))
    ).all()
    closed = []
    for app in waiting:
        if not clock_of(app, calendar, when.day).abandoned:
            continue
        app.status = Status.abandoned
        app.outcome = Outcome.other
        app.outcome_reason = "no_correction"
        app.closed_on = when.day
        app.updated_at = when.at
        await _event(session, app, actor, "abandoned", when)
        closed.append(app)
    await session.commit()
    return closed


async def by_number(session: AsyncSession, number: str) -> Application | None:
    return (await session.exec(select(Application).where(Application.number == number))).first()


async def for_applicant(
    session: AsyncSession, sealer: Sealer, number: str, code: str
) -> Application | None:
    """The application when ``code`` is its lookup code; None for a wrong code and for a number
    that does not exist alike, after the same work (one query for one short column, one
    digest, one comparison), so the answer's timing does not tell which. Only a right code
    loads the application."""
    found = (
        await session.exec(
            select(Application.id, Application.code_hash).where(Application.number == number)
        )
    ).first()
    expected = found[1] if found is not None else code_digest(sealer, _DUMMY_NUMBER, "")
    given = code_digest(sealer, number, code)
    if hmac.compare_digest(expected, given) and found is not None:
        return await session.get(Application, found[0])
    return None


async def events_of(session: AsyncSession, app: Application) -> list[ApplicationEvent]:
    return list(
        (
            await session.exec(
                select(ApplicationEvent)
                .where(ApplicationEvent.application_id == app.id)
                .order_by(col(ApplicationEvent.at), col(ApplicationEvent.id))
            )
        ).all()
    )


def applicant_of(sealer: Sealer, app: Application) -> dict[str, Any]:
    """The applicant's name and contact in the clear: for handlers and admins only."""
    return {"name": sealer.open(app.name_sealed), **sealer.open(app.contact_sealed)}
