"""Read queries shared by the API, the CLI and the console, so they show the same numbers."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Attempt, Delivery, Item, Region, Target


@dataclass
class DeliveryFilter:
    item: str | None = None
    channel: str | None = None
    status: str | None = None
    region: str | None = None  # the region and its subtree
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    after_id: int | None = None  # keyset pagination: fast over 100,000 rows


async def _conditions(session: AsyncSession, f: DeliveryFilter) -> list[Any]:
    conditions: list[Any] = []
    if f.item:
        conditions.append(Delivery.item_id == f.item)
    if f.channel:
        conditions.append(Delivery.channel == f.channel)
    if f.status:
        conditions.append(Delivery.status == f.status)
    if f.region:
        region = await session.get(Region, f.region)
        prefix = region.path if region else f"/{f.region}/"
        sub = select(Region.code).where(col(Region.path).startswith(prefix))
        conditions.append(col(Delivery.region_code).in_(sub))
    if f.since:
        conditions.append(Delivery.created_at >= f.since)
    if f.until:
        conditions.append(Delivery.created_at < f.until)
    if f.after_id:
        conditions.append(col(Delivery.id) < f.after_id)
    return conditions


async def list_deliveries(session: AsyncSession, f: DeliveryFilter) -> list[Delivery]:
    stmt = select(Delivery).where(*await _conditions(session, f))
    stmt = stmt.order_by(col(Delivery.id).desc()).limit(f.limit)
    return list((await session.exec(stmt)).all())


_ROW_COLUMNS = {
    "id": Delivery.id,
    "item": Delivery.item_id,
    "channel": Delivery.channel,
    "region": Delivery.region_code,
    "target_id": Delivery.target_id,
    "languages": Delivery.languages,
    "status": Delivery.status,
    "attempts": Delivery.attempts,
    "last_error": Delivery.last_error,
    "created_at": Delivery.created_at,
    "delivered_at": Delivery.delivered_at,
}


async def list_delivery_rows(session: AsyncSession, f: DeliveryFilter) -> list[dict[str, Any]]:
    """The log's columns without the stored payloads: what a CSV of 100,000 rows needs."""
    stmt = select(*_ROW_COLUMNS.values()).where(*await _conditions(session, f))  # type: ignore[call-overload]
    stmt = stmt.order_by(col(Delivery.id).desc()).limit(f.limit)
    rows = [dict(zip(_ROW_COLUMNS, r, strict=True)) for r in (await session.exec(stmt)).all()]
    labels = await target_labels(session, {r["target_id"] for r in rows if r["target_id"]})
    for r in rows:
        r["target"] = labels.get(r.pop("target_id") or -1)
        for key in ("created_at", "delivered_at"):
            r[key] = r[key].isoformat() if r[key] else None
    return rows


async def counts_by_channel(session: AsyncSession, item_id: str) -> dict[str, dict[str, int]]:
    rows = await session.exec(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.item_id == item_id)
        .group_by(Delivery.channel, Delivery.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, status, n in rows.all():
        out[channel][status] = n
    return dict(out)


async def attempts_for(session: AsyncSession, delivery_ids: list[int]) -> dict[int, list[Attempt]]:
    if not delivery_ids:
        return {}
    rows = await session.exec(
        select(Attempt).where(col(Attempt.delivery_id).in_(delivery_ids)).order_by(Attempt.id)
    )
    out: dict[int, list[Attempt]] = defaultdict(list)
    for a in rows.all():
        out[a.delivery_id].append(a)
    return out


async def target_labels(session: AsyncSession, target_ids: set[int]) -> dict[int, str]:
    if not target_ids:
        return {}
    rows = await session.exec(select(Target).where(col(Target.id).in_(target_ids)))
    return {t.id: t.address_masked for t in rows.all() if t.id is not None}


def delivery_public(
    d: Delivery, target_label: str | None = None, attempts: list[Attempt] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": d.id,
        "item": d.item_id,
        "channel": d.channel,
        "region": d.region_code,
        "target": target_label,
        "languages": d.languages,
        "status": d.status,
        "attempts": d.attempts,
        "parts": len(d.payload.get("parts", [])),
        "parts_done": d.parts_done,
        "provider_message_ids": d.provider_message_ids,
        "last_error": d.last_error,
        "notes": d.notes,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }
    if attempts is not None:
        data["attempt_log"] = [
            {
                "number": a.number,
                "part": a.part_index,
                "outcome": a.outcome,
                "at": a.started_at.isoformat(),
                "provider_message_id": a.provider_message_id,
                "error": a.error,
                "retry_after": a.retry_after,
            }
            for a in attempts
        ]
    return data


CSV_FIELDS = [
    "id",
    "item",
    "channel",
    "region",
    "target",
    "languages",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
]


def deliveries_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "languages": "+".join(r.get("languages") or [])})
    return buf.getvalue()


OPEN_STATUSES = ("planned", "scheduled", "queued", "sending", "failed")


def item_status(item: Item, counts: dict[str, dict[str, int]] | None) -> str:
    """Published once planned and nothing is still on its way (derived: the hot path never
    updates items)."""
    if (
        item.status == "publishing"
        and item.planning_status == "done"
        and counts is not None
        and not any(n for by in counts.values() for st, n in by.items() if st in OPEN_STATUSES)
    ):
        return "published"
    return item.status


def item_public(item: Item, counts: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "title": item.title,
        "doc_number": item.doc_number,
        "issuer": item.issuer,
        "issued_at": item.issued_at.isoformat(),
        "domain": item.domain,
        "regions": item.regions,
        "channels": item.channels,
        "urgent": item.urgent,
        "disclosure": item.disclosure,
        "interprets": item.interprets,
        "status": item_status(item, counts),
        "publish_at": item.publish_at.isoformat() if item.publish_at else None,
        "published_at": item.published_at.isoformat() if item.published_at else None,
        "recalled_at": item.recalled_at.isoformat() if item.recalled_at else None,
        "publish_due": item.publish_due.isoformat() if item.publish_due else None,
        "interpretation_due": item.interpretation_due.isoformat()
        if item.interpretation_due
        else None,
        "deadline_warnings": item.deadline_warnings,
        "languages": ["zh", *sorted(item.translations or {})],
        "deliveries": counts if counts is not None else None,
        "planning": planning_public(item),
    }


def planning_public(item: Item) -> dict[str, Any]:
    """Where the item's planning job is: ``planned`` of ``total`` deliveries written so far."""
    return {
        "status": item.planning_status,
        "planned": item.planned,
        "total": item.planning_total,
        "error": item.planning_error,
    }
