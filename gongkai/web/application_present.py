"""Presenting an application: to its applicant (no names, no handlers), as a row of the
office's list (masked), as the whole file (the applicant in the clear only for handlers), and
as the reply letter rendered from the outcome's template. Shared by the API, the public pages
and the console, so each shows the same facts the same way."""

from __future__ import annotations

from datetime import date, tzinfo
from typing import Any

from gongkai.channels.rendering import render
from gongkai.domain.applications import OUTCOME_LABELS, REASONS, STATUS_LABELS, Outcome, Status
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.crypto import Sealer
from gongkai.web.application_models import (
    ApplicantStep,
    ApplicantView,
    ApplicationEventPublic,
    ApplicationRecord,
    ApplicationRow,
)

STEP_LABELS = {
    "submit": "提交申请",
    "register": "登记（收到申请）",
    "review": "审核通过",
    "correction_requested": "告知补正",
    "corrected": "收到补正",
    "extension": "延长答复期限",
    "answer": "答复",
    "archive": "归档",
    "abandoned": "逾期未补正，视为放弃",
    "notice": "通知申请人",
    "published_proactively": "转为主动公开",
}


def reason_label(outcome: str | None, reason: str | None) -> str | None:
    if not outcome or not reason:
        return None
    return REASONS[Outcome(outcome)].get(reason)


def render_letter(
    app: Application,
    sealer: Sealer,
    *,
    outcome: str,
    reason: str | None,
    agency: str,
    reply_text: str,
    answered_on: date,
) -> str:
    """The reply letter from the outcome's template (``templates/applications/zh/<outcome>.j2``;
    a county rewords it by overriding the file in its data dir)."""
    return render(
        "applications",
        "zh",
        Outcome(outcome).value,
        number=app.number,
        applicant=sealer.open(app.name_sealed),
        received_on=_cn_day(app.received_on or app.handed_in_on),
        description=app.description.split("\n【补正", 1)[0],
        reason_label=reason_label(outcome, reason) or "",
        reply_text=reply_text,
        attachments=app.attachments,
        agency=agency,
        answered_on=_cn_day(answered_on),
    ).strip()


def _cn_day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def applicant_view(
    app: Application, events: list[ApplicationEvent], today: date, calendar: Any, tz: tzinfo
) -> ApplicantView:
    c = flow.clock_of(app, calendar, today)
    return ApplicantView(
        number=app.number,
        status=app.status,
        status_label=STATUS_LABELS[Status(app.status)],
        received_on=_iso(app.received_on),
        due_on=_iso(app.due_on),
        correction_note=app.correction_note if app.status == Status.correcting else None,
        correction_until=_iso(c.correction_until) if app.status == Status.correcting else None,
        outcome=app.outcome,
        outcome_label=OUTCOME_LABELS[Outcome(app.outcome)] if app.outcome else None,
        reason_label=reason_label(app.outcome, app.outcome_reason),
        reply_letter=app.reply_letter,
        steps=[
            ApplicantStep(
                step=e.step,
                label=STEP_LABELS.get(e.step, e.step),
                day=e.at.astimezone(tz).date().isoformat(),
            )
            for e in events
        ],
    )


def row_of(app: Application, calendar: Any, today: date) -> ApplicationRow:
    """A list row; working days left from the stored due day (no calendar walk per row)."""
    running = app.status in (Status.registered, Status.handling) and app.due_on is not None
    return ApplicationRow(
        number=app.number,
        status=app.status,
        status_label=STATUS_LABELS[Status(app.status)],
        applicant_type=app.applicant_type,
        applicant=app.name_masked,
        contact=app.contact_masked,
        description=app.description[:200],
        channel=app.channel,
        handler=app.handler,
        received_on=_iso(app.received_on),
        due_on=_iso(app.due_on),
        workdays_left=calendar.workdays_between(today, app.due_on) if running else None,
    )


def record_of(
    app: Application,
    events: list[ApplicationEvent],
    *,
    sealer: Sealer,
    calendar: Any,
    today: date,
    visible: bool,
) -> ApplicationRecord:
    row = row_of(app, calendar, today)
    c = flow.clock_of(app, calendar, today)
    detail: dict[str, str] = {}
    if visible:
        detail = {k: str(v) for k, v in flow.applicant_of(sealer, app).items()}
        row.applicant = detail.get("name", "")
        row.contact = " ".join(v for k, v in detail.items() if k != "name")
    return ApplicationRecord(
        **row.model_dump(),
        applicant_visible=visible,
        applicant_detail=detail,
        purpose=app.purpose,
        reply_channel=app.reply_channel,
        language=app.language,
        handed_in_on=app.handed_in_on.isoformat(),
        correction_requested_on=_iso(app.correction_requested_on),
        correction_note=app.correction_note,
        correction_until=_iso(c.correction_until),
        corrected_on=_iso(app.corrected_on),
        extension_approver=app.extension_approver,
        extension_workdays=app.extension_workdays,
        outcome=app.outcome,
        outcome_reason=app.outcome_reason,
        reply_text=app.reply_text,
        reply_letter=app.reply_letter,
        attachments=app.attachments,
        closed_on=_iso(app.closed_on),
        warnings=c.warnings,
        events=[
            ApplicationEventPublic(
                at=e.at.isoformat(),
                actor=e.actor,
                step=e.step,
                label=STEP_LABELS.get(e.step, e.step),
                detail=e.detail,
            )
            for e in events
        ],
    )
