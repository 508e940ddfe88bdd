"""One approved item in: validate, store, set its deadlines, queue its planning.

Everything that refuses an item happens here, in the request; the fan-out (rendering a
delivery for every target) is the planning job's (``plan_job.py``), so the request answers in
milliseconds whatever the item's reach. The item answers ``planning: pending`` until then.

Shared by ``POST /api/v1/items``, ``gongkai publish`` and the console's publish form, so all
three refuse and accept exactly the same things.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.dispatch.plan_job import planning_job_name, queue_planning
from gongkai.domain.deadlines import deadlines
from gongkai.domain.items import FieldError, ItemIn, ItemRefused, check_publishable
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import (
    AuditEntry,
    Delivery,
    Item,
    ItemStatus,
    PlanningStatus,
    Region,
)
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)


class ItemConflict(Exception):
    """The id exists with different content: re-sending must not silently change a notice."""


@dataclass
class IngestResult:
    item: Item
    # The deliveries planned so far: none for a new item (its planning job writes them), all
    # of them for an id sent again.
    deliveries: list[Delivery]
    created: bool
    warnings: list[str] = field(default_factory=list)


async def ingest_item(
    session: AsyncSession,
    sealer: Sealer,
    item_in: ItemIn,
    *,
    actor: str,
    public_url: str,
    calendar: WorkCalendar,
    pool: ArqRedis | None,
    tz: ZoneInfo,
) -> IngestResult:
    existing = await session.get(Item, item_in.id)
    if existing is not None:
        if existing.content_hash != item_in.content_hash():
            raise ItemConflict(
                f"item {item_in.id} was already ingested with different content; "
                "use a new id for a corrected item (and recall the old one)"
            )
        warnings: list[str] = []
        if existing.planning_status == PlanningStatus.failed:  # fixed since? plan the rest
            warnings = await _plan_again(session, existing, pool)
        deliveries = list(
            (await session.exec(select(Delivery).where(Delivery.item_id == existing.id))).all()
        )
        return IngestResult(existing, deliveries, created=False, warnings=warnings)

    check_publishable(item_in, list(registry.CHANNEL_NAMES))
    errors = await directory_errors(session, item_in)
    if errors:
        raise ItemRefused(errors)

    policy = await session.get(Item, item_in.interprets) if item_in.interprets else None
    now = utcnow()
    scheduled = item_in.publish_at is not None and item_in.publish_at > now
    published_on = (item_in.publish_at or now).astimezone(tz).date()
    due = deadlines(
        calendar,
        kind=item_in.kind,
        issued_at=item_in.issued_at,
        published_on=published_on,
        policy_interpretation_due=policy.interpretation_due if policy is not None else None,
    )
    warnings = due.warnings

    item = item_row(
        item_in,
        status=ItemStatus.scheduled if scheduled else ItemStatus.publishing,
        publish_due=due.publish_due,
        interpretation_due=due.interpretation_due,
        deadline_warnings=warnings,
        published_at=None if scheduled else now,
        created_at=now,
        created_by=actor,
        content_hash=item_in.content_hash(),
    )
    job = planning_job_name() if pool is not None else None
    item.planning_status = PlanningStatus.pending
    item.planning_job = job
    session.add(item)
    session.add(
        AuditEntry(
            actor=actor,
            action="publish",
            item_id=item.id,
            detail={"scheduled": scheduled, "planning": "queued"},
        )
    )
    await session.commit()
    warnings = list(warnings)  # the item's own deadline warnings are stored as they were
    if pool is not None and job is not None:
        try:
            await queue_planning(pool, item.id, job, urgent=item.urgent)
        except Exception as exc:  # the item is stored: reconciliation queues its planning
            log.warning("could not queue %s's planning (%s)", item.id, exc)
            warnings.append(
                "the queue (Redis) was unreachable: the item is stored and a worker "
                "will plan and send it within a minute"
            )
    return IngestResult(item, [], created=True, warnings=warnings)


async def _plan_again(session: AsyncSession, item: Item, pool: ArqRedis | None) -> list[str]:
    """Sending an item whose planning failed again (a template fixed meanwhile) queues its
    planning again; it resumes after the deliveries already written."""
    job = planning_job_name() if pool is not None else None
    item.planning_status = PlanningStatus.pending
    item.planning_error = None
    item.planning_job = job
    item.planning_lease_until = None
    session.add(item)
    await session.commit()
    if pool is not None and job is not None:
        try:
            await queue_planning(pool, item.id, job, urgent=item.urgent)
        except Exception as exc:
            log.warning("could not queue %s's planning (%s)", item.id, exc)
    return ["its planning had failed: it is planned again"]


async def directory_errors(session: AsyncSession, item_in: ItemIn) -> list[FieldError]:
    """What a valid item can still be refused for: the directory and the items it names."""
    errors: list[FieldError] = []
    for i, code in enumerate(item_in.regions):
        if await session.get(Region, code) is None:
            errors.append(
                FieldError(
                    field=f"regions[{i}]", message=f"区划 {code} 不在目录中 / unknown region"
                )
            )
    if item_in.interprets:
        policy = await session.get(Item, item_in.interprets)
        if policy is None:
            message = f"找不到政策 {item_in.interprets} / unknown policy"
            errors.append(FieldError(field="interprets", message=message))
        elif policy.kind != "policy":
            message = f"{item_in.interprets} 不是政策文件 / not a policy"
            errors.append(FieldError(field="interprets", message=message))
    for name in item_in.channels or []:
        try:
            registry.get(name)
        except registry.UnknownChannel:
            errors.append(
                FieldError(field="channels", message=f"渠道 {name} 尚未启用 / not available")
            )
    return errors


def item_row(item_in: ItemIn, **extra: Any) -> Item:
    """The Item row for an item file (not added to any session)."""
    data = item_in.model_dump(mode="python")
    nested = ("catalog", "translations", "channels", "wechat")
    return Item(
        **{k: v for k, v in data.items() if k not in nested},
        catalog={k: v for k, v in item_in.catalog.model_dump().items() if v is not None},
        translations={
            lang: {k: v for k, v in tr.model_dump().items() if v}
            for lang, tr in item_in.translations.items()
        },
        channels=list(item_in.channels or []),
        options={"wechat": item_in.wechat.model_dump()} if item_in.wechat else {},
        **extra,
    )
