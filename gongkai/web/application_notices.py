"""After a step the applicant must hear about, the notice through the channel they chose.

SMS (``dispatch.application_notice``) is sent at once and its outcome recorded as an event of
the application: a provider's refusal or an unreachable provider is written down for the handler
to see (and to phone or post instead), never an error of the step itself, which has happened.

An applicant who chose WeChat or Telegram is written to in the chat they applied from
(``dispatch.application_chat_notice``). WeChat allows that only within 48 hours of their last
message; outside it the notice goes by SMS when they left a mobile number, and otherwise the
event says ``needs_post``: a person must print and post it (the console shows the event).

Post and pickup need a person: the console prints the letter. Online, the status page is the
notice.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import ChannelError
from gongkai.dispatch.application_chat_notice import OutsideWindow, notify_in_chat
from gongkai.dispatch.application_notice import NoticeUnavailable, notify_by_sms
from gongkai.domain.applications import ReplyChannel
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.web.keys import HTTP, MAKER, POOL, SEALER, SETTINGS

log = logging.getLogger(__name__)

# the steps an applicant is told about, and what the notice says
NOTICE_TEXT = {
    "request_correction": "需要补正",
    "extend": "已延长答复期限",
    "answer": "已答复",
}
CHAT_REPLIES = frozenset({ReplyChannel.wechat, ReplyChannel.telegram})


async def notify_applicant(request: web.Request, app: Application, step: str) -> None:
    status = NOTICE_TEXT.get(step)
    if status is None or app.reply_channel not in (ReplyChannel.sms, *CHAT_REPLIES):
        return
    settings = request.app[SETTINGS]
    when = flow.now_in(settings.tz)
    async with request.app[MAKER]() as session:
        detail: dict[str, Any] = {"status": status}
        if app.reply_channel in CHAT_REPLIES:
            detail["channel"] = app.reply_channel
            try:
                notice = await notify_in_chat(
                    session,
                    request.app[SEALER],
                    settings,
                    request.app[HTTP],
                    request.app.get(POOL),
                    app,
                    status=status,
                    now=when.at,
                )
                detail["message_id"] = notice.provider_message_id
            except OutsideWindow as exc:
                detail["chat_error"] = str(exc)[:500]
                await _by_sms(request, session, app, status, detail, fallback=True)
            except (NoticeUnavailable, ChannelError) as exc:
                log.warning("application %s: chat notice not sent: %s", app.number, exc)
                detail["error"] = str(exc)[:500]
        else:
            await _by_sms(request, session, app, status, detail, fallback=False)
        session.add(
            ApplicationEvent(
                application_id=app.id,  # type: ignore[arg-type]
                at=when.at,
                actor="system",
                step="notice",
                detail=detail,
            )
        )
        await session.commit()


async def _by_sms(
    request: web.Request,
    session: AsyncSession,
    app: Application,
    status: str,
    detail: dict[str, Any],
    *,
    fallback: bool,
) -> None:
    """The SMS notice, its outcome written into ``detail``; as a fallback from a closed chat
    window, a notice that cannot go by SMS either is marked for a person to post."""
    sequence = (
        await session.exec(
            select(func.count()).where(
                ApplicationEvent.application_id == app.id, ApplicationEvent.step == "notice"
            )
        )
    ).one()
    if fallback:
        detail["fallback_from"] = detail.get("channel")
    detail["channel"] = "sms"
    try:
        notice = await notify_by_sms(
            session,
            request.app[SEALER],
            request.app[SETTINGS],
            request.app[HTTP],
            app,
            status=status,
            sequence=int(sequence),
        )
        detail["message_id"] = notice.provider_message_id
    except (NoticeUnavailable, ChannelError) as exc:
        log.warning("application %s: SMS notice not sent: %s", app.number, exc)
        detail["error"] = str(exc)[:500]
        if fallback:
            detail["channel"] = "post"
            detail["needs_post"] = True
