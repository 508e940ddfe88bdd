"""The public form at ``/apply`` and the status page at ``/apply/{number}``, in Chinese and
Mongolian: what a resident without WeChat uses, usually on a phone.

Plain HTML forms with no script at all, so they work under a strict Content-Security-Policy
(no inline script or style) and on the oldest phone browser. The same checks, limits and number
as ``POST /api/v1/applications``; the status page is the applicant's view of the API, shown only
with the lookup code (a wrong code and an unknown number say the same thing).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import yaml
from aiohttp import web
from pydantic import ValidationError

from gongkai.channels.rendering import PACKAGE_TEMPLATES, render
from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import ApplicantType, Channel, Number, ReplyChannel
from gongkai.storage import application_flow as flow
from gongkai.web.application_present import applicant_view
from gongkai.web.applications import (
    apply_allowed,
    field_errors,
    find_for_applicant,
    submit_form,
)
from gongkai.web.inputs import read_body
from gongkai.web.keys import CALENDAR, MAKER, SETTINGS

routes = web.RouteTableDef()
LANGUAGES = ("zh", "mn")
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_FORM_BYTES = 64 * 1024
PUBLIC_REPLIES = (ReplyChannel.online, ReplyChannel.sms, ReplyChannel.post, ReplyChannel.pickup)


@lru_cache(maxsize=4)
def words(lang: str) -> dict[str, str]:
    path = PACKAGE_TEMPLATES / "apply" / f"{lang}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _lang(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else "zh"


def _html(
    request: web.Request, lang: str, name: str, status: int = 200, **ctx: Any
) -> web.Response:
    other = "mn" if lang == "zh" else "zh"
    html = render(
        "apply",
        "zh",  # one set of templates; the words come from <lang>.yaml
        name,
        html=True,
        t=words(lang),
        page_lang=lang,
        switch_href=f"{request.path}?lang={other}",
        **ctx,
    )
    response = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_page(
    request: web.Request, lang: str, *, values: dict[str, str], errors: list[Any], status: int
) -> web.Response:
    return _html(
        request,
        lang,
        "form.html",
        status,
        values=values,
        errors=errors,
        applicant_types=[t.value for t in ApplicantType],
        reply_channels=[c.value for c in PUBLIC_REPLIES],
    )


async def _post_fields(request: web.Request) -> dict[str, str]:
    """The form's fields: at most 64 KiB and 50 of them, UTF-8 (percent-escapes included)."""
    raw = await read_body(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="表单无法读取 / unreadable form") from None
    return {k: v for k, v in pairs}


@routes.get("/apply")
async def form(request: web.Request) -> web.Response:
    lang = _lang(request.query.get("lang"))
    return _form_page(request, lang, values={}, errors=[], status=200)


@routes.post("/apply")
async def submit(request: web.Request) -> web.Response:
    fields = await _post_fields(request)
    lang = _lang(fields.get("language"))
    data = {k: v for k, v in fields.items() if k in ApplicationIn.model_fields}
    data["language"] = lang
    try:
        application = ApplicationIn.model_validate(data)
    except ValidationError as exc:
        errors = [e.model_dump() for e in field_errors(exc)]
        for e in errors:  # a rule across fields is named by the contact it needs
            if e["field"] in ("", "(body)"):
                e["field"] = "phone"
        return _form_page(request, lang, values=data, errors=errors, status=422)
    if not await apply_allowed(request):
        return _html(request, lang, "lookup.html", 429, wrong=words(lang)["too_many"], number="")
    app, code = await submit_form(request, application, channel=Channel.web)
    return _html(request, lang, "received.html", 201, number=app.number, code=code)


async def _status(request: web.Request, lang: str, number: str, code: str) -> web.Response:
    checked = number if Number.parse(number) else "YSQ-0000-000000"
    try:
        app = await find_for_applicant(request, checked, code)
    except web.HTTPTooManyRequests:
        return _html(
            request, lang, "lookup.html", 429, wrong=words(lang)["too_many"], number=number[:20]
        )
    if app is None:
        return _html(
            request, lang, "lookup.html", 404, wrong=words(lang)["wrong_code"], number=number[:20]
        )
    async with request.app[MAKER]() as session:
        events = await flow.events_of(session, app)
    today = flow.now_in(request.app[SETTINGS].tz).day
    view = applicant_view(app, events, today, request.app[CALENDAR], request.app[SETTINGS].tz)
    return _html(request, lang, "status.html", v=view)


@routes.get("/apply/lookup")
async def lookup_form(request: web.Request) -> web.Response:
    lang = _lang(request.query.get("lang"))
    return _html(request, lang, "lookup.html", wrong="", number="")


@routes.post("/apply/lookup")
async def lookup(request: web.Request) -> web.Response:
    fields = await _post_fields(request)
    lang = _lang(fields.get("language"))
    number = fields.get("number", "").strip().upper()[:40]
    return await _status(request, lang, number, fields.get("code", "")[:32])


@routes.get("/apply/{number}")
async def status_page(request: web.Request) -> web.Response:
    """With ``?code=`` (the link in an SMS notice) the status; without, the lookup form."""
    lang = _lang(request.query.get("lang"))
    number = request.match_info["number"][:40]
    code = request.query.get("code", "")[:32]
    if not code:
        return _html(request, lang, "lookup.html", wrong="", number=number[:20])
    return await _status(request, lang, number, code)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
