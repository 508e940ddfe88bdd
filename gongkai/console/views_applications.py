"""Applications for disclosure in the console: the list with working days left or overdue, a
clerk's registration of a visit or a letter, the file with its steps and the forms for the next
one, the reply letter to print, and the yearly table (section 三) as a page and as CSV.

Every step goes through the same code as the API's (``web.applications.take_step``), under the
signed-in user's name. Viewers see applicants masked; publishers (the handlers) and admins in
the clear.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gongkai.console.console_queries import now_local
from gongkai.console.render import message_page, needs, page, parse_day, see_other
from gongkai.console.sessions import SESSION, flash
from gongkai.console.views_application_publish import ALLOWED_DOMAINS
from gongkai.domain.annual_table import COLUMNS
from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import (
    APPLICANT_LABELS,
    CONFIRMED_BY_CLERK,
    OUTCOME_LABELS,
    REASONS,
    STATUS_LABELS,
    Channel,
    Number,
    Status,
)
from gongkai.domain.bounds import EARLIEST_DAY, LATEST_DAY
from gongkai.storage import application_flow as flow
from gongkai.storage import application_queries
from gongkai.storage.models import Role
from gongkai.web.application_models import ApplicationStep
from gongkai.web.application_present import record_of, row_of
from gongkai.web.applications import field_errors, take_step
from gongkai.web.keys import CALENDAR, MAKER, SEALER, SETTINGS

routes = web.RouteTableDef()

CHANNEL_LABELS = {
    "web": "网站",
    "wechat": "微信",
    "telegram": "Telegram",
    "in_person": "当面",
    "post_signed": "邮寄（签收）",
    "post_unsigned": "平信（电话确认）",
    "fax": "传真",
}
REPLY_LABELS = {
    "online": "网上查询",
    "sms": "短信通知",
    "wechat": "微信",
    "telegram": "Telegram",
    "post": "邮寄",
    "pickup": "当面领取",
}
# the next steps each status allows, in the order the forms are shown
NEXT_STEPS: dict[str, tuple[str, ...]] = {
    Status.submitted: ("register",),
    Status.registered: ("accept", "request_correction", "extend", "answer"),
    Status.correcting: ("corrected",),
    Status.handling: ("request_correction", "extend", "answer"),
    Status.answered: ("archive",),
    Status.abandoned: ("archive",),
}

LABELS = {
    "statuses": {s.value: label for s, label in STATUS_LABELS.items()},
    "applicants": {t.value: label for t, label in APPLICANT_LABELS.items()},
    "outcomes": {o.value: label for o, label in OUTCOME_LABELS.items()},
    "reasons": {o.value: reasons for o, reasons in REASONS.items()},
    "channels": CHANNEL_LABELS,
    "replies": REPLY_LABELS,
}


def _today(request: web.Request) -> date:
    return now_local(request.app[SETTINGS].tz).date()


@routes.get("/admin/applications")
async def listing(request: web.Request) -> web.Response:
    status = request.query.get("status", "")
    if status not in {s.value for s in Status}:
        status = ""
    open_only = request.query.get("open", "1" if not status else "") == "1"
    today = _today(request)
    async with request.app[MAKER]() as session:
        await flow.abandon_overdue(
            session, request.app[CALENDAR], when=flow.now_in(request.app[SETTINGS].tz)
        )
        apps = await application_queries.applications(
            session, status=status or None, open_only=open_only, limit=500
        )
        # the handler's due-day reminders (dispatch.application_reminders), current due days only
        running = [a for a in apps if a.status in (Status.registered, Status.handling)]
        found = await application_queries.reminders_for(session, running)
        repeated = await application_queries.repeated_subjects(
            session,
            since=today - timedelta(days=365),
            threshold=request.app[SETTINGS].applications_repeat_threshold,
        )
    rows = [row_of(a, request.app[CALENDAR], today) for a in apps]
    reminders = [
        {**found[a.id][-1], "number": a.number, "handler": a.handler}
        for a in running
        if a.id in found
    ]
    return await page(
        request,
        "applications.html.j2",
        reminders=reminders,
        active="applications",
        rows=rows,
        status_filter=status,
        open_only=open_only,
        today=today,
        labels=LABELS,
        repeated=repeated,
        domains=ALLOWED_DOMAINS,
        threshold=request.app[SETTINGS].applications_repeat_threshold,
    )


@routes.get("/admin/applications/new")
@needs(Role.publisher)
async def new_form(request: web.Request) -> web.Response:
    return await page(
        request,
        "application_new.html.j2",
        active="applications",
        labels=LABELS,
        clerk_channels=[c.value for c in Channel if c in CONFIRMED_BY_CLERK],
        values={},
        errors=[],
        today=_today(request),
    )


@routes.post("/admin/applications/new")
@needs(Role.publisher)
async def register_visit_or_letter(request: web.Request) -> web.StreamResponse:
    """A clerk registers an application handed in at the office, by post or by fax."""
    form = await request.post()
    values = {k: str(v) for k, v in form.items() if k != "csrf" and isinstance(v, str)}
    channel = values.pop("channel", "in_person")
    handed_raw = values.pop("handed_in_on", "")
    errors: list[Any] = []
    try:
        clerk_channel = Channel(channel)
        if clerk_channel not in CONFIRMED_BY_CLERK:
            raise ValueError
    except ValueError:
        clerk_channel = Channel.in_person
        errors.append({"field": "channel", "message": "请选择收件方式"})
    today = _today(request)
    handed = parse_day(handed_raw, "handed_in_on") or today
    if handed > today:
        errors.append({"field": "handed_in_on", "message": "收件日期不能晚于今天"})
    try:
        application = ApplicationIn.model_validate(
            {k: v for k, v in values.items() if v != "" or k in ("name", "description")}
        )
    except ValidationError as exc:
        errors += [e.model_dump() for e in field_errors(exc)]
        application = None
    if errors or application is None:
        return await page(
            request,
            "application_new.html.j2",
            status=422,
            active="applications",
            labels=LABELS,
            clerk_channels=[c.value for c in Channel if c in CONFIRMED_BY_CLERK],
            values={**values, "channel": channel, "handed_in_on": handed_raw},
            errors=errors,
            today=today,
        )
    async with request.app[MAKER]() as session:
        app, code = await flow.submit(
            session,
            request.app[SEALER],
            request.app[CALENDAR],
            application,
            channel=clerk_channel,
            when=flow.now_in(request.app[SETTINGS].tz),
            actor=request[SESSION].name,
            handed_in_on=handed,
        )
    await flash(request, f"已登记 {app.number}。请告知申请人查询码：{code}（只显示这一次）。")
    return see_other(f"/admin/applications/{app.number}")


async def _load(request: web.Request) -> Any:
    number = request.match_info["number"]
    if Number.parse(number) is None:
        return None
    async with request.app[MAKER]() as session:
        return await flow.by_number(session, number)


@routes.get("/admin/applications/annual")
async def annual_page(request: web.Request) -> web.StreamResponse:
    """Section 三 of the yearly report; ``?format=csv`` for the spreadsheet."""
    raw = request.query.get("year", "")
    year = _today(request).year
    if raw:
        if not raw.isascii() or not raw.isdigit() or len(raw) != 4:
            return await message_page(
                request, 400, "年份格式不对", "年份应写作 2026 这样的四位数。"
            )
        year = int(raw)
    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:
        return await message_page(
            request, 400, "年份超出范围", f"年份应在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 之间。"
        )
    async with request.app[MAKER]() as session:
        await flow.abandon_overdue(
            session, request.app[CALENDAR], when=flow.now_in(request.app[SETTINGS].tz)
        )
        table = await application_queries.annual(session, year)
    if request.query.get("format") == "csv":
        return web.Response(
            body=("\ufeff" + table.csv()).encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="ysq-annual-{year}.csv"'},
        )
    return await page(
        request,
        "application_annual.html.j2",
        active="applications",
        table=table,
        columns=COLUMNS,
        labels=APPLICANT_LABELS,
        year=year,
    )


@routes.get("/admin/applications/{number}")
async def detail(request: web.Request) -> web.Response:
    app = await _load(request)
    if app is None:
        return await message_page(request, 404, "没有这个申请", "申请编号不存在。")
    async with request.app[MAKER]() as session:
        events = await flow.events_of(session, app)
    me = request[SESSION]
    today = _today(request)
    record = record_of(
        app,
        events,
        sealer=request.app[SEALER],
        calendar=request.app[CALENDAR],
        today=today,
        visible=me.can(Role.publisher),
    )
    return await page(
        request,
        "application.html.j2",
        active="applications",
        a=record,
        times=[
            e.at.astimezone(request.app[SETTINGS].tz).strftime("%Y-%m-%d %H:%M") for e in events
        ],
        next_steps=NEXT_STEPS.get(app.status, ()) if me.can(Role.publisher) else (),
        labels=LABELS,
        today=today,
    )


@routes.get("/admin/applications/{number}/letter")
@needs(Role.publisher)
async def letter(request: web.Request) -> web.Response:
    """The reply letter alone, to print and post (or hand over)."""
    app = await _load(request)
    if app is None or not app.reply_letter:
        return await message_page(request, 404, "没有答复书", "此申请尚未答复。")
    return await page(request, "application_letter.html.j2", a=app)


def _attachments(text: str) -> list[dict[str, str]]:
    """One per line: ``name | link`` (the link optional)."""
    out = []
    for line in text.splitlines()[:20]:
        name, _, link = line.partition("|")
        if name.strip():
            out.append({"name": name.strip()[:200], "url": link.strip()[:500]})
    return out


@routes.post("/admin/applications/{number}/steps")
@needs(Role.publisher)
async def step(request: web.Request) -> web.StreamResponse:
    app = await _load(request)
    if app is None:
        return await message_page(request, 404, "没有这个申请", "申请编号不存在。")
    form = await request.post()
    data: dict[str, Any] = {
        k: str(v) for k, v in form.items() if k not in ("csrf", "attachments") and str(v) != ""
    }
    try:
        parsed = ApplicationStep.model_validate(data).root
    except ValidationError as exc:
        problems = "；".join(f"{e.field}：{e.message}" for e in field_errors(exc))
        await flash(request, f"未能办理：{problems}", "error")
        return see_other(f"/admin/applications/{app.number}")
    if data.get("step") == "answer" and form.get("attachments"):
        app.attachments = _attachments(str(form.get("attachments")))
    try:
        await take_step(request, app, parsed, actor=request[SESSION].name)
    except flow.StepRefused as exc:
        await flash(request, f"未能办理：{exc}", "error")
        return see_other(f"/admin/applications/{app.number}")
    await flash(request, "已办理。")
    return see_other(f"/admin/applications/{app.number}")
