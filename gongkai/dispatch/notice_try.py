"""One try of an applicant's notice through the channel they chose, the event that records it,
and the retry a temporary refusal earns.

The web request that takes a step makes the first try inline (``web.application_notices``); the
worker's retry job (``notice_retry``) makes the later ones, with the same code, so a retry goes
exactly where the first try would have gone now: the chat (a WeChat customer-service message
within the 48-hour window, a Telegram bot message), SMS when WeChat's window has closed, else a
person posts it (``needs_post``); an applicant who chose SMS, by SMS.

Every try appends one ``notice`` event; none is ever changed. A first try that succeeds or is
refused for good records what it always did. A try refused *temporarily* (``TransientError``:
provider unreachable, HTTP 5xx, a rate limit or flood wait, WeChat's "system busy") also
records ``try`` (1, 2, …) and ``retry_at``: the retry is the arq job named after that event
(``notice_job``), queued after the commit, so it is never queued twice, and a retry whose job
Redis lost is found again from the event alone (``notice_retry.requeue_lost_retries``). A retry
records ``notice`` (the id of the first try's event) and its ``try``. The waits are
``GONGKAI_APPLICATIONS_NOTICE_RETRY_SECONDS`` (1, 5, 15, 60, 240 minutes), or longer when the
provider asks, and a retry falling in quiet hours waits for their end; a try refused
temporarily after the last wait records ``needs_post``.

An SMS whose request went out without an answer (``UncertainError``) is not tried again: neither
provider deduplicates, and a resident would get it twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from arq.connections import ArqRedis
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import ChannelError, TransientError
from gongkai.config import Settings
from gongkai.dispatch.application_chat_notice import OutsideWindow, notify_in_chat
from gongkai.dispatch.application_notice import NoticeUnavailable, notify_by_sms
from gongkai.dispatch.queue import QUEUE_NAME
from gongkai.dispatch.quiet import quiet_until
from gongkai.domain.applications import ReplyChannel
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.crypto import Sealer
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

NOTICE_JOB = "application_notice"  # the arq function of a retry
CHAT_REPLIES = frozenset({ReplyChannel.wechat, ReplyChannel.telegram})
NOTIFIED = frozenset({ReplyChannel.sms, *CHAT_REPLIES})


@dataclass
class NoticeKit:
    """What sending a notice needs: the web app's clients or a worker's ``Deps``."""

    settings: Settings
    sealer: Sealer
    http: aiohttp.ClientSession
    pool: ArqRedis | None  # queues the retry (and holds WeChat's shared access token)


@dataclass
class Outcome:
    detail: dict[str, Any]
    transient: TransientError | None = None  # refused for now: worth another try


def retry_time(settings: Settings, now: datetime, wait: float, asked: float | None) -> datetime:
    """When to try again: after our wait or the provider's, whichever is longer, and not in
    quiet hours (a retry may go by SMS, and an applicant is not texted at night)."""
    due = now + timedelta(seconds=max(wait, asked or 0.0))
    return quiet_until(due, settings.quiet_window, settings.tz) or due


def notice_job(event_id: int) -> str:
    """The retry's arq job id: one per try refused, so a retry is never queued twice."""
    return f"notice:{event_id}"


def notice_of(event: ApplicationEvent) -> int:
    """Which notice an event is a try of: the id of its first try's event."""
    return int(event.detail.get("notice") or event.id or 0)


async def send_once(
    session: AsyncSession, kit: NoticeKit, app: Application, status: str, now: datetime
) -> Outcome:
    """Send the notice once by the applicant's route; what happened, for the event."""
    detail: dict[str, Any] = {"status": status}
    if app.reply_channel not in CHAT_REPLIES:
        return await _by_sms(session, kit, app, status, detail, fallback=False)
    detail["channel"] = app.reply_channel
    try:
        notice = await notify_in_chat(
            session, kit.sealer, kit.settings, kit.http, kit.pool, app, status=status, now=now
        )
    except OutsideWindow as exc:
        detail["chat_error"] = str(exc)[:500]
        return await _by_sms(session, kit, app, status, detail, fallback=True)
    except (NoticeUnavailable, ChannelError) as exc:
        log.warning("application %s: chat notice not sent: %s", app.number, exc)
        detail["error"] = str(exc)[:500]
        return Outcome(detail, exc if isinstance(exc, TransientError) else None)
    detail["message_id"] = notice.provider_message_id
    return Outcome(detail)


async def _by_sms(
    session: AsyncSession,
    kit: NoticeKit,
    app: Application,
    status: str,
    detail: dict[str, Any],
    *,
    fallback: bool,
) -> Outcome:
    """The SMS notice. As a fallback from a closed chat window, a notice SMS refuses for good
    (or cannot carry) is marked for a person to post; one refused for now is tried again."""
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
            kit.sealer,
            kit.settings,
            kit.http,
            app,
            status=status,
            sequence=int(sequence),  # one provider-side reference per try
        )
    except (NoticeUnavailable, ChannelError) as exc:
        log.warning("application %s: SMS notice not sent: %s", app.number, exc)
        detail["error"] = str(exc)[:500]
        if isinstance(exc, TransientError):
            return Outcome(detail, exc)
        if fallback:
            detail["channel"] = "post"
            detail["needs_post"] = True
        return Outcome(detail)
    detail["message_id"] = notice.provider_message_id
    return Outcome(detail)


async def try_notice(
    session: AsyncSession,
    kit: NoticeKit,
    app: Application,
    status: str,
    *,
    at: datetime,
    tries: int = 1,
    first: int | None = None,
) -> ApplicationEvent:
    """Try ``tries`` of a notice (``first``: its first try's event, for a retry): send, append
    and commit its event, and queue the retry a temporary refusal earns."""
    outcome = await send_once(session, kit, app, status, at)
    detail = outcome.detail
    delay: float | None = None
    if first is not None:
        detail["notice"] = first
    if first is not None or outcome.transient is not None:
        detail["try"] = tries
    if outcome.transient is not None:
        delays = kit.settings.notice_retry_delays
        if tries <= len(delays):
            now = utcnow()
            due = retry_time(kit.settings, now, delays[tries - 1], outcome.transient.retry_after)
            delay = (due - now).total_seconds()
            detail["retry_at"] = due.isoformat()
        else:
            detail["needs_post"] = True  # refused for now, every time: a person takes over
    event = ApplicationEvent(
        application_id=app.id,  # type: ignore[arg-type]
        at=at,
        actor="system",
        step="notice",
        detail=detail,
    )
    session.add(event)
    await session.commit()
    if delay is not None and kit.pool is not None:
        await queue_retry(kit.pool, event.id or 0, delay)
    return event


async def queue_retry(pool: ArqRedis, event_id: int, delay: float) -> bool:
    """Queue the retry of the try recorded as ``event_id``. With Redis away the event still
    says when it is due, and reconciliation queues it (False)."""
    try:
        await pool.enqueue_job(
            NOTICE_JOB,
            event_id,
            _queue_name=QUEUE_NAME,
            _job_id=notice_job(event_id),
            _defer_by=timedelta(seconds=max(0.0, delay)),
        )
    except Exception as exc:
        log.warning("could not queue notice retry %s (%s); reconciliation will", event_id, exc)
        return False
    return True
