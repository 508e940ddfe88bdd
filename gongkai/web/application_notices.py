"""After a step the applicant must hear about, the notice through the channel they chose.

The first try is made at once, in the request that took the step (``dispatch.notice_try``, the
code the worker's retries share): an applicant who chose SMS is texted through the county's SMS
account (``dispatch.application_notice``); one who applied in WeChat or Telegram is written to
in that chat (``dispatch.application_chat_notice``). WeChat allows that only within 48 hours of
their last message; outside it the notice goes by SMS when they left a mobile number, and
otherwise the event says ``needs_post``: a person must print and post it (the console shows the
event).

Its outcome is an event of the application, never an error of the step itself, which has
happened. A provider that refuses for now (unreachable, 5xx, a rate limit) earns retries by the
workers, each an event of its own, and ``needs_post`` after the last.

Post and pickup need a person: the console prints the letter. Online, the status page is the
notice.
"""

from __future__ import annotations

from aiohttp import web

from gongkai.dispatch.notice_try import NOTIFIED, NoticeKit, try_notice
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application
from gongkai.web.keys import HTTP, MAKER, POOL, SEALER, SETTINGS

# the steps an applicant is told about, and what the notice says
NOTICE_TEXT = {
    "request_correction": "需要补正",
    "extend": "已延长答复期限",
    "answer": "已答复",
}


async def notify_applicant(request: web.Request, app: Application, step: str) -> None:
    status = NOTICE_TEXT.get(step)
    if status is None or app.reply_channel not in NOTIFIED:
        return
    settings = request.app[SETTINGS]
    kit = NoticeKit(settings, request.app[SEALER], request.app[HTTP], request.app.get(POOL))
    async with request.app[MAKER]() as session:
        await try_notice(session, kit, app, status, at=flow.now_in(settings.tz).at)
