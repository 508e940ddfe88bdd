"""After a step the applicant must hear about, the notice through the channel they chose.

SMS (``dispatch.application_notice``) is sent at once and its outcome recorded as an event of
the application: a provider's refusal or an unreachable provider is written down for the handler
to see (and to phone or post instead), never an error of the step itself, which has happened.
Post and pickup need a person: the console prints the letter. Online, the status page is the
notice.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlmodel import func, select

from gongkai.channels.base import ChannelError
from gongkai.dispatch.application_notice import NoticeUnavailable, notify_by_sms
from gongkai.domain.applications import ReplyChannel
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.web.keys import HTTP, MAKER, SEALER, SETTINGS

log = logging.getLogger(__name__)

# the steps an applicant is told about, and what the notice says
NOTICE_TEXT = {
    "request_correction": "需要补正",
    "extend": "已延长答复期限",
    "answer": "已答复",
}


async def notify_applicant(request: web.Request, app: Application, step: str) -> None:
    status = NOTICE_TEXT.get(step)
    if status is None or app.reply_channel != ReplyChannel.sms:
        return
    settings = request.app[SETTINGS]
    when = flow.now_in(settings.tz)
    async with request.app[MAKER]() as session:
        sequence = (
            await session.exec(
                select(func.count()).where(
                    ApplicationEvent.application_id == app.id, ApplicationEvent.step == "notice"
                )
            )
        ).one()
        detail: dict[str, object] = {"channel": "sms", "status": status}
        try:
            notice = await notify_by_sms(
                session,
                request.app[SEALER],
                settings,
                request.app[HTTP],
                app,
                status=status,
                sequence=int(sequence),
            )
            detail["message_id"] = notice.provider_message_id
        except (NoticeUnavailable, ChannelError) as exc:
            log.warning("application %s: SMS notice not sent: %s", app.number, exc)
            detail["error"] = str(exc)[:500]
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
