"""The applications API: residents apply and follow their application; the office takes it
through 登记 → 审核 → 办理 → 答复 → 归档 (domain.md rule 10).

``POST /api/v1/applications`` is public like the bots' doors, so it is bounded (64 KiB body,
the form model's limits) and counted per client address in Redis. ``GET …/{number}?code=``
answers a wrong code and an unknown number with the same 404 after the same work, and counts
the misses per address, so neither guessing codes nor probing numbers gets anywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, ValidationError
from sqlalchemy.orm.exc import StaleDataError

from gongkai.dispatch.ratelimit import Allowance
from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import (
    STATUS_LABELS,
    Channel,
    Number,
    Status,
    outcome_problem,
)
from gongkai.domain.items import FieldError, pydantic_errors
from gongkai.storage import application_flow as flow
from gongkai.storage import application_queries
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.models import ROLE_RANK, Role
from gongkai.web.answers import Error, FieldErrors, answer, not_found
from gongkai.web.application_models import (
    AcceptStep,
    AnswerStep,
    ApplicationList,
    ApplicationReceipt,
    ApplicationStep,
    ArchiveStep,
    CorrectedStep,
    CorrectionStep,
    ExtendStep,
    RegisterStep,
)
from gongkai.web.application_notices import notify_applicant
from gongkai.web.application_present import applicant_view, record_of, render_letter, row_of
from gongkai.web.auth import principal, require
from gongkai.web.clients import client_address
from gongkai.web.inputs import read_json, text_param
from gongkai.web.keys import CALENDAR, MAKER, REDIS_URL, SEALER, SETTINGS
from gongkai.web.params import Choice, Query, Whole

MAX_APPLICATION_BYTES = 64 * 1024
APPLY_RATE = "10/hour"  # applications per client address
LOOKUP_MISSES = "30/hour"  # wrong codes or unknown numbers per client address
APPLY_LIMIT = web.AppKey("apply_limit", Allowance)
LOOKUP_LIMIT = web.AppKey("apply_lookup_limit", Allowance)

routes = web.RouteTableDef()


class ApplicationListQuery(Query):
    """``GET /api/v1/applications``: the office's list, soonest due first."""

    status: Annotated[str | None, Choice(tuple(s.value for s in Status))] = None
    open: Annotated[
        str | None, Choice(("true", "false")), Field(description="only those still running")
    ] = None
    limit: Annotated[int, Whole(lo=1, hi=1000), Field(description="rows (at most 1000)")] = 200


def field_errors(exc: ValidationError) -> list[FieldError]:
    """An application's refusals read as an item's do (one wording for a missing field)."""
    return pydantic_errors(exc, whole="(body)")


def refused(error: str, errors: list[FieldError], status: int = 422) -> web.Response:
    return answer(FieldErrors(error=error, errors=errors), status)


def lookup_url(request: web.Request, number: str) -> str:
    return f"{request.app[SETTINGS].public_url.rstrip('/')}/apply/{number}"


def _number(request: web.Request) -> str:
    raw = request.match_info["number"]
    if Number.parse(raw) is None:
        raise not_found("no such application")
    return raw


async def submit_form(
    request: web.Request, form: ApplicationIn, *, channel: Channel, actor: str = "applicant"
) -> tuple[Application, str]:
    """One application in, from the API or the public form."""
    when = flow.now_in(request.app[SETTINGS].tz)
    async with request.app[MAKER]() as session:
        return await flow.submit(
            session,
            request.app[SEALER],
            request.app[CALENDAR],
            form,
            channel=channel,
            when=when,
            actor=actor,
        )


async def apply_allowed(request: web.Request) -> bool:
    return await request.app[APPLY_LIMIT].take(client_address(request))


@routes.post("/api/v1/applications")
async def apply(request: web.Request) -> web.Response:
    """Apply for disclosure (public): answers the number and the lookup code."""
    data = await read_json(request, max_bytes=MAX_APPLICATION_BYTES, max_depth=4)
    if not isinstance(data, dict):
        return refused(
            "invalid application",
            [FieldError(field="(body)", message="应为对象 / expected an object")],
        )
    try:
        form = ApplicationIn.model_validate(data)
    except ValidationError as exc:
        return refused("invalid application", field_errors(exc))
    if not await apply_allowed(request):
        return answer(Error(error="too many applications from this address; try again later"), 429)
    app, code = await submit_form(request, form, channel=Channel.web)
    return answer(
        ApplicationReceipt(
            number=app.number,
            code=code,
            status=app.status,
            status_label=STATUS_LABELS[Status(app.status)],
            lookup_url=lookup_url(request, app.number),
        ),
        201,
    )


async def find_for_applicant(request: web.Request, number: str, code: str) -> Application | None:
    """The applicant's application, or None; misses are counted per address (429 past them)."""
    limit = request.app[LOOKUP_LIMIT]
    who = client_address(request)
    if await limit.spent(who):
        raise web.HTTPTooManyRequests(
            text='{"error": "too many wrong lookups; try again later"}',
            content_type="application/json",
        )
    async with request.app[MAKER]() as session:
        app = await flow.for_applicant(session, request.app[SEALER], number, code)
    if app is None:
        await limit.take(who)
    return app


@routes.get("/api/v1/applications/{number}")
async def follow(request: web.Request) -> web.Response:
    """The applicant's view of one application, with its lookup code (public)."""
    number = request.match_info["number"]
    code = text_param(request.query, "code", max_chars=32) or ""
    if Number.parse(number) is None:
        number = "YSQ-0000-000000"  # still do the same work: the answer's timing tells nothing
    app = await find_for_applicant(request, number, code)
    if app is None:
        raise not_found("no such application, or the code is wrong")
    settings = request.app[SETTINGS]
    async with request.app[MAKER]() as session:
        events = await flow.events_of(session, app)
    today = flow.now_in(settings.tz).day
    return answer(applicant_view(app, events, today, request.app[CALENDAR], settings.tz))


@routes.get("/api/v1/applications")
@require(Role.viewer)
async def listing(request: web.Request) -> web.Response:
    """The office's list (names and contacts masked), the soonest due first."""
    query = ApplicationListQuery.read(request.query)
    async with request.app[MAKER]() as session:
        await flow.abandon_overdue(
            session, request.app[CALENDAR], when=flow.now_in(request.app[SETTINGS].tz)
        )
        rows = await application_queries.applications(
            session, status=query.status, open_only=query.open == "true", limit=query.limit
        )
    today = flow.now_in(request.app[SETTINGS].tz).day
    cal = request.app[CALENDAR]
    items = [row_of(a, cal, today) for a in rows]
    return answer(ApplicationList(applications=items, total=len(items)))


async def sees_applicant(request: web.Request) -> bool:
    who = await principal(request)
    return who is not None and ROLE_RANK[Role(who["role"])] >= ROLE_RANK[Role.publisher]


@routes.get("/api/v1/applications/{number}/record")
@require(Role.viewer)
async def record(request: web.Request) -> web.Response:
    """The whole file with every step; the applicant in the clear for handlers and admins."""
    number = _number(request)
    async with request.app[MAKER]() as session:
        app = await flow.by_number(session, number)
        if app is None:
            raise not_found("no such application")
        events = await flow.events_of(session, app)
    return _record_answer(request, app, events, visible=await sees_applicant(request))


def _record_answer(
    request: web.Request, app: Application, events: list[ApplicationEvent], *, visible: bool
) -> web.Response:
    """The office's view of one file, with working days counted from today in the county."""
    today = flow.now_in(request.app[SETTINGS].tz).day
    return answer(
        record_of(
            app,
            events,
            sealer=request.app[SEALER],
            calendar=request.app[CALENDAR],
            today=today,
            visible=visible,
        )
    )


async def _apply_step(
    request: web.Request, app: Application, step: Any, *, actor: str
) -> Application:
    """The step itself, in its own transaction."""
    settings = request.app[SETTINGS]
    cal = request.app[CALENDAR]
    when = flow.now_in(settings.tz)
    async with request.app[MAKER]() as session:
        try:
            app = await session.merge(app)
        except StaleDataError:
            raise flow.StepRefused(
                "此申请刚被他人办理过，请刷新后再办理 / changed meanwhile: reload and try again"
            ) from None
        match step:
            case RegisterStep():
                return await flow.register(session, cal, app, actor=actor, when=when)
            case AcceptStep():
                return await flow.accept(
                    session, cal, app, actor=actor, handler=step.handler, when=when
                )
            case CorrectionStep():
                return await flow.request_correction(
                    session,
                    cal,
                    app,
                    actor=actor,
                    note=step.note,
                    period_workdays=step.period_workdays,
                    when=when,
                )
            case CorrectedStep():
                return await flow.record_correction(
                    session, cal, app, actor=actor, text=step.text, when=when
                )
            case ExtendStep():
                return await flow.extend(
                    session,
                    cal,
                    app,
                    actor=actor,
                    approver=step.approver,
                    workdays=step.workdays,
                    reason=step.reason,
                    when=when,
                )
            case AnswerStep():
                letter = ""
                if outcome_problem(step.outcome, step.reason) is None:
                    letter = render_letter(
                        app,
                        request.app[SEALER],
                        outcome=step.outcome,
                        reason=step.reason,
                        agency=settings.applications_agency,
                        reply_text=step.reply_text,
                        answered_on=when.day,
                    )
                return await flow.answer(
                    session,
                    cal,
                    app,
                    actor=actor,
                    outcome=step.outcome,
                    reason=step.reason,
                    reply_text=step.reply_text,
                    letter=letter,
                    when=when,
                )
            case ArchiveStep():
                return await flow.archive(session, app, actor=actor, when=when)
    raise ValueError(f"unknown step {step!r}")


async def take_step(
    request: web.Request, app: Application, step: Any, *, actor: str
) -> Application:
    """One workflow step on a loaded application (``StepRefused`` when it is not allowed),
    then the notice the applicant is owed, through the channel they chose."""
    app = await _apply_step(request, app, step, actor=actor)
    await notify_applicant(request, app, step.step)
    return app


@routes.post("/api/v1/applications/{number}/steps")
@require(Role.publisher)
async def step(request: web.Request) -> web.Response:
    """One step of the workflow (register, accept, request_correction, corrected, extend,
    answer, archive); answers the whole file after it."""
    number = _number(request)
    data = await read_json(request, max_bytes=MAX_APPLICATION_BYTES, max_depth=4)
    try:
        parsed = ApplicationStep.model_validate(data).root
    except ValidationError as exc:
        return refused("invalid step", field_errors(exc))
    who = await principal(request)
    actor = who["name"] if who else "?"
    async with request.app[MAKER]() as session:
        app = await flow.by_number(session, number)
    if app is None:
        raise not_found("no such application")
    try:
        app = await take_step(request, app, parsed, actor=actor)
    except flow.StepRefused as exc:
        return answer(Error(error="step not allowed", message=str(exc)), 409)
    async with request.app[MAKER]() as session:
        events = await flow.events_of(session, app)
    return _record_answer(request, app, events, visible=True)


def setup(app: web.Application) -> None:
    app[APPLY_LIMIT] = Allowance(app[REDIS_URL], APPLY_RATE, "apply")
    app[LOOKUP_LIMIT] = Allowance(app[REDIS_URL], LOOKUP_MISSES, "apply-lookup")
    app.add_routes(routes)
