"""The worker's retry of an applicant's notice refused temporarily, and reconciliation's check
that every retry due is queued.

A retry is the arq job ``notice:<event id>`` for the event of the try it repeats
(``notice_try``); it runs only while that event is still the last try of its notice, so a job
run twice (reconciliation racing a worker finishing) sends once. The events are the truth: a
retry due whose job Redis no longer holds (a restart without its data, an enqueue that failed
when the web request took the step) is queued again by ``requeue_lost_retries``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arq import Retry
from arq.constants import in_progress_key_prefix
from sqlalchemy import Text, cast
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.dispatch.notice_try import (
    NOTICE_JOB,
    NoticeKit,
    notice_job,
    notice_of,
    queue_retry,
    try_notice,
)
from gongkai.dispatch.queue import job_exists_key
from gongkai.dispatch.rows import DATABASE_DOWN
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.types import utcnow

if TYPE_CHECKING:
    from gongkai.dispatch.deps import Deps

__all__ = ["NOTICE_JOB", "notice_retry_job", "requeue_lost_retries"]

log = logging.getLogger(__name__)

# A retry due this instant may not be in Redis yet (it is queued after its event's commit);
# queuing it twice is harmless (the job's name is taken), only wasted.
GRACE = timedelta(seconds=1)
# How far back reconciliation looks for notices: far beyond the longest run of retries.
LOOK_BACK = timedelta(days=30)


async def notice_retry_job(ctx: dict[str, Any], event_id: int) -> str:
    return await retry_notice(ctx["deps"], event_id)


async def retry_notice(deps: Deps, event_id: int) -> str:
    """Try again the notice whose try ``event_id`` was refused for now."""
    async with deps.maker() as session:
        try:
            found = await _still_due(session, event_id)
        except DATABASE_DOWN as exc:  # nothing was sent: the same job again shortly
            log.warning("database unavailable (%s); notice retry %s later", exc, event_id)
            raise Retry(defer=5) from exc
        if isinstance(found, str):
            return found
        event, app = found
        # From here a lost database fails the job instead of retrying it at once: the notice
        # may have gone, and reconciliation queues it again only once the job's result expired.
        kit = NoticeKit(deps.settings, deps.sealer, deps.http, deps.pool)
        tries = int(event.detail.get("try") or 1) + 1
        done = await try_notice(
            session,
            kit,
            app,
            str(event.detail["status"]),
            at=utcnow(),
            tries=tries,
            first=notice_of(event),
        )
        outcome = "retry queued" if "retry_at" in done.detail else "sent"
        if "error" in done.detail and "retry_at" not in done.detail:
            outcome = "needs post" if done.detail.get("needs_post") else "refused"
        return f"{app.number} try {tries} by {done.detail.get('channel')}: {outcome}"


async def _still_due(
    session: AsyncSession, event_id: int
) -> tuple[ApplicationEvent, Application] | str:
    """The refused try and its application, or why there is nothing to do: the try is not
    the last of its notice any more (this job ran already), or it is gone."""
    event = await session.get(ApplicationEvent, event_id)
    if event is None or event.step != "notice" or "retry_at" not in event.detail:
        return "nothing to retry"
    first = notice_of(event)
    later = (
        await session.exec(
            select(ApplicationEvent).where(
                ApplicationEvent.application_id == event.application_id,
                ApplicationEvent.step == "notice",
                col(ApplicationEvent.id) > event_id,
            )
        )
    ).all()
    if any(notice_of(e) == first for e in later):
        return "already tried again"
    app = await session.get(Application, event.application_id)
    if app is None:
        return "application gone"
    return event, app


async def due_retries(deps: Deps, now: datetime) -> list[int]:
    """The tries whose retry is due: each the last try of its notice, with ``retry_at`` past.

    Only the applications with a try that named a retry are read whole: in the usual round
    there are none, and the check costs one query over recent notices' text."""
    notice = ApplicationEvent.step == "notice"
    async with deps.maker() as session:
        apps = (
            await session.exec(
                select(ApplicationEvent.application_id)
                .where(
                    notice,
                    ApplicationEvent.at >= now - LOOK_BACK,
                    cast(ApplicationEvent.detail, Text).like('%"retry_at"%'),
                )
                .distinct()
            )
        ).all()
        if not apps:
            return []
        events = (
            await session.exec(
                select(ApplicationEvent)
                .where(notice, col(ApplicationEvent.application_id).in_(apps))
                .order_by(col(ApplicationEvent.id))
            )
        ).all()
    last: dict[tuple[int, int], ApplicationEvent] = {}
    for event in events:
        last[(event.application_id, notice_of(event))] = event
    due = []
    for event in last.values():
        at = event.detail.get("retry_at")
        if at and datetime.fromisoformat(str(at)) < now - GRACE and event.id is not None:
            due.append(event.id)
    return due


async def requeue_lost_retries(deps: Deps, now: datetime | None = None) -> int:
    """Queue again every due retry whose job Redis holds neither waiting nor running."""
    due = await due_retries(deps, now or utcnow())
    if not due:
        return 0
    async with deps.pool.pipeline(transaction=False) as pipe:
        for event_id in due:
            pipe.exists(job_exists_key(notice_job(event_id)))
            pipe.exists(in_progress_key_prefix + notice_job(event_id))
        held = await pipe.execute()
    lost = [e for i, e in enumerate(due) if not (held[2 * i] or held[2 * i + 1])]
    for event_id in lost:
        await queue_retry(deps.pool, event_id, 0)
    if lost:
        log.warning("reconciled: %d notice retries whose job was lost", len(lost))
    return len(lost)
