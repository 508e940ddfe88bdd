"""Delivering a batch of deliveries: claim the rows, send, record every outcome.

arq runs a job at least once, so the delivery row is the guard: one compare-and-set claims all
the batch's claimable rows, parts already accepted are never sent again, and a delivered row is
left alone. Sending touches no database (``sending.py``); the outcomes of the whole batch are
recorded in one transaction, which is what makes a worker fast.

This is the hot path of a fan-out, so it speaks SQLAlchemy Core: rows come back as tuples, not
ORM objects, and outcomes are written with one executemany per statement shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import TargetView
from gongkai.dispatch import metrics
from gongkai.dispatch.deps import IDS, Deps
from gongkai.dispatch.outcomes import retry_or_give_up, settled
from gongkai.dispatch.progress import CLAIMABLE, finish_items
from gongkai.dispatch.queue import POLL_INTERVAL, enqueue_delivery, enqueue_poll
from gongkai.dispatch.quiet import quiet_until
from gongkai.dispatch.sending import Claimed, Outcome, send_parts
from gongkai.storage.bulk import insert_rows
from gongkai.storage.models import Attempt, Delivery, DeliveryStatus, Item, ItemStatus, Target
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
A = Attempt.__table__  # type: ignore[attr-defined]


_CLAIMED_COLUMNS = (
    D.id,
    D.item_id,
    D.target_id,
    D.channel,
    D.payload,
    D.parts_done,
    D.attempts,
)


async def deliver(deps: Deps, delivery_id: int) -> str:
    """Run one delivery as far as it can go now; returns a word for logs and tests."""
    return (await deliver_batch(deps, [delivery_id]))[0]


async def deliver_batch(deps: Deps, ids: list[int]) -> list[str]:
    words: dict[int, str] = {}
    later: list[tuple[int, datetime | None, float | None]] = []  # (id, at, delay) to enqueue
    jobs = await _take(deps, ids, words, later)
    outcomes = await _send_all(deps, jobs)
    if jobs:
        async with deps.maker() as session:
            follow = await _record(
                session, deps, [(d, o) for (d, _), o in zip(jobs, outcomes, strict=True)]
            )
        for delivery_id, word, at, delay in follow:
            words[delivery_id] = word
            if word == "pending":
                await enqueue_poll(deps.pool, delivery_id, POLL_INTERVAL)
            elif at is not None or delay is not None:
                later.append((delivery_id, at, delay))
    for delivery_id, at, delay in later:
        await enqueue_delivery(deps.pool, delivery_id, at=at, delay=delay)
    return [words.get(i, "?") for i in ids]


async def _take(
    deps: Deps,
    ids: list[int],
    words: dict[int, str],
    later: list[tuple[int, datetime | None, float | None]],
) -> list[tuple[Claimed, Any]]:
    """Claim what may go now and pair each claimed row with its send (or its refusal).

    Rows that must wait (scheduled, backing off, quiet hours) go to ``later``; every id not
    claimed gets its word. One transaction, committed before anything is sent, so another
    worker sees the claims at once.
    """
    now = utcnow()
    async with deps.maker() as session:
        rows = (
            await session.execute(
                select(D.id, D.item_id, D.channel, D.status, D.not_before).where(D.id.in_(IDS)),
                {"ids": ids},
            )
        ).all()
        found = {r[0]: r for r in rows}
        candidates: list[int] = []
        quiet: dict[datetime, list[int]] = defaultdict(list)
        holds: dict[tuple[str, str], tuple[str, datetime] | None] = {}  # (item, channel) → hold
        for delivery_id in ids:
            row = found.get(delivery_id)
            if row is None:
                words[delivery_id] = "missing"
                continue
            _, item_id, channel, status, not_before = row
            if status not in CLAIMABLE:
                words[delivery_id] = f"skipped ({status})"
                continue
            if (item_id, channel) not in holds:
                item = await deps.item(session, item_id)
                holds[item_id, channel] = _held(deps, channel, item, now)
            wait_until = _not_yet(holds[item_id, channel], not_before, now)
            if wait_until is not None:
                word, at = wait_until
                words[delivery_id] = word
                if word == "quiet hours":
                    quiet[at].append(delivery_id)
                later.append((delivery_id, at, None))
                continue
            candidates.append(delivery_id)
        for at, quiet_ids in quiet.items():
            await session.execute(
                update(DELIVERY)
                .where(D.id.in_(IDS))
                .values(status=DeliveryStatus.queued, not_before=at, updated_at=now),
                {"ids": quiet_ids},
            )
        claimed = await _claim(session, candidates) if candidates else []
        unclaimed = set(candidates) - {c.id for c in claimed}
        if unclaimed:
            cancelled = await _cancel_recalled(session, unclaimed, now)
            for delivery_id in unclaimed:
                words[delivery_id] = (
                    "cancelled" if delivery_id in cancelled else "claimed elsewhere"
                )
        await session.commit()
        await deps.prefetch_targets(
            session, {c.target_id for c in claimed if c.target_id is not None}
        )
        jobs: list[tuple[Claimed, TargetView | str]] = []
        for d in claimed:
            try:
                tv, active, reason = await deps.target(session, d.target_id, d.channel)
            except LookupError as exc:
                jobs.append((d, str(exc)))
                continue
            jobs.append((d, tv if active else f"target inactive: {reason or 'deactivated'}"))
    return jobs


def _held(
    deps: Deps, channel: str, item: Item | None, now: datetime
) -> tuple[str, datetime] | None:
    """What holds all of an item's deliveries on one channel: its schedule or quiet hours."""
    if item is None:
        return None
    if item.publish_at and item.publish_at > now:
        return "scheduled", item.publish_at
    if registry.get(channel).quiet_hours_apply and not item.urgent:
        until = quiet_until(now, deps.settings.quiet_window, deps.settings.tz)
        if until is not None:
            return "quiet hours", until
    return None


def _not_yet(
    hold: tuple[str, datetime] | None, not_before: datetime | None, now: datetime
) -> tuple[str, datetime] | None:
    """The schedule first, then the row's own backoff, then quiet hours."""
    if hold is not None and hold[0] == "scheduled":
        return hold
    if not_before and not_before > now + timedelta(seconds=1):
        return "not yet", not_before
    return hold


def _recalled_items() -> Any:
    return select(Item.id).where(Item.status == ItemStatus.recalled)


async def _claim(session: AsyncSession, ids: list[int]) -> list[Claimed]:
    result = await session.execute(
        update(DELIVERY)
        .where(D.id.in_(IDS), D.status.in_(CLAIMABLE), D.item_id.not_in(_recalled_items()))
        .values(status=DeliveryStatus.sending, updated_at=utcnow())
        .returning(*_CLAIMED_COLUMNS),
        {"ids": ids},
    )
    by_id = {row[0]: Claimed(*row) for row in result.all()}
    return [by_id[i] for i in ids if i in by_id]  # the job's order


async def _cancel_recalled(session: AsyncSession, ids: set[int], now: datetime) -> set[int]:
    """Candidates the claim passed over while still claimable: only their item's recall does
    that, so they are cancelled. The rest were claimed by another worker in the meantime."""
    result = await session.execute(
        update(DELIVERY)
        .where(D.id.in_(ids), D.status.in_(CLAIMABLE), D.item_id.in_(_recalled_items()))
        .values(status=DeliveryStatus.cancelled, last_error="recalled", updated_at=now)
        .returning(D.id)
    )
    return {row[0] for row in result.all()}


async def _send_all(deps: Deps, jobs: list[tuple[Claimed, TargetView | str]]) -> list[Outcome]:
    """Send a batch through a fixed number of lanes, each taking the next delivery in turn.

    A task per delivery, all queued on the worker's slots, cost a task and a semaphore wait
    each; lanes cost neither, and still share ``deps.slots`` with the worker's other jobs.
    """
    outcomes: list[Outcome | None] = [None] * len(jobs)
    turns = iter(range(len(jobs)))

    async def lane() -> None:
        for i in turns:
            d, target = jobs[i]
            if isinstance(target, str):  # the target is gone or inactive: nothing to send
                outcomes[i] = Outcome(kind="permanent", parts_done=d.parts_done, error=target)
                continue
            async with deps.slots:
                outcomes[i] = await send_parts(deps, d, registry.get(d.channel), target)

    lanes = min(len(jobs), deps.settings.worker_concurrency)
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return outcomes  # type: ignore[return-value]


async def _record(
    session: AsyncSession, deps: Deps, results: list[tuple[Claimed, Outcome]]
) -> list[tuple[int, str, datetime | None, float | None]]:
    """Write every outcome of the batch in one transaction; return what to enqueue next.

    Rows whose outcome is alike (most of a fan-out: delivered, one attempt, nothing to append)
    share one ``UPDATE … WHERE id IN``; the rest go through one executemany per shape of change.
    """
    now = utcnow()
    attempts = [a for _, o in results for a in o.attempts]
    failures = await _failures_since_requeue(
        session, [d.id for d, o in results if o.kind == "transient"]
    )
    appends = {d.id for d, o in results if o.provider_message_ids or o.notes}
    lists = await _lists(session, appends)
    # Keys are plain strings and ints: hashing an enum or a datetime per row showed in profiles.
    alike: dict[tuple[str, int, int, str | None], list[int]] = defaultdict(list)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    follow: list[tuple[int, str, datetime | None, float | None]] = []
    deactivate: dict[int, str | None] = {}
    counted: Counter[tuple[str, str]] = Counter()
    for d, o in results:
        if o.kind == "transient":
            changes, word, delay = retry_or_give_up(
                deps.settings, o, failures.get(d.id, 0) + 1, now
            )
        else:
            changes, word = settled(o.kind, o.error, now)
            delay = o.retry_after if o.kind == "rate_limited" else None
            if o.deactivate_target and d.target_id is not None:
                deactivate[d.target_id] = o.error
        follow.append((d.id, word, None, delay))
        counted[(d.channel, changes["status"])] += 1
        if d.id in appends or o.kind == "transient":
            row = {
                "_id": d.id,
                "attempts": d.attempts + len(o.attempts),
                "parts_done": o.parts_done,
                "updated_at": now,
                **changes,
            }
            if d.id in appends:
                message_ids, notes = lists[d.id]
                row["provider_message_ids"] = [*message_ids, *o.provider_message_ids]
                row["notes"] = [*notes, *o.notes]
            shapes[tuple(sorted(row))].append(row)
        else:
            alike[(o.kind, o.parts_done, len(o.attempts), o.error)].append(d.id)
    for (channel, status), n in counted.items():
        metrics.outcome(channel, status, n)
    for target_id, reason in deactivate.items():
        await session.execute(
            update(Target)
            .where(col(Target.id) == target_id)
            .values(active=False, inactive_reason=reason)
        )
        deps.targets.pop(target_id, None)
    await insert_rows(session, A, attempts)  # one shape: send_parts fills every column
    for (kind, parts_done, added, error), ids in alike.items():
        changes = settled(kind, error, now)[0]
        await session.execute(
            update(DELIVERY)
            .where(D.id.in_(IDS))
            .values(**changes, parts_done=parts_done, updated_at=now, attempts=D.attempts + added),
            {"ids": ids},
        )
    for keys, rows in shapes.items():
        await session.execute(
            update(DELIVERY)
            .where(D.id == bindparam("_id"))
            .values({k: bindparam(k) for k in keys if k != "_id"}),
            rows,
        )
    await finish_items(session, {d.item_id for d, o in results if o.kind == "delivered"})
    await session.commit()
    return follow


async def _lists(session: AsyncSession, ids: set[int]) -> dict[int, tuple[list[str], list[str]]]:
    """Provider message ids and notes so far, for the rows that append to them."""
    if not ids:
        return {}
    rows = await session.execute(select(D.id, D.provider_message_ids, D.notes).where(D.id.in_(ids)))
    return {i: (list(m or []), list(n or [])) for i, m, n in rows.all()}


async def _failures_since_requeue(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """Transient failures per delivery since an admin last requeued it (a retry starts afresh)."""
    if not ids:
        return {}
    a = A.c
    requeued = dict(
        (
            await session.execute(
                select(a.delivery_id, func.max(a.id))
                .where(a.delivery_id.in_(ids), a.outcome == "requeued")
                .group_by(a.delivery_id)
            )
        ).all()
    )
    rows = (
        await session.execute(
            select(a.delivery_id, a.id).where(a.delivery_id.in_(ids), a.outcome == "transient")
        )
    ).all()
    counts: dict[int, int] = defaultdict(int)
    for delivery_id, attempt_id in rows:
        if attempt_id > requeued.get(delivery_id, 0):
            counts[delivery_id] += 1
    return counts


# The pending-verdict half lives in pending.py; these names are where callers look for them.
from gongkai.dispatch.pending import complete_pending, poll_pending  # noqa: E402

__all__ = [
    "CLAIMABLE",
    "Claimed",
    "Deps",
    "complete_pending",
    "deliver",
    "deliver_batch",
    "poll_pending",
]
