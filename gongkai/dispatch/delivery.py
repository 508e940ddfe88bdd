"""Delivering a batch of deliveries: claim the rows, send, record every outcome.

The database is the queue of record; an arq job only says "look at these rows now". One
compare-and-set claims the batch's claimable rows with a lease (``lease_until``, renewed while
the worker works, ``leases.py``): a row whose lease has run out is claimable again, so a killed
worker's rows are taken over. Parts already accepted are never sent again; a part that must
never go twice and may have left when its worker died (``rows.IN_FLIGHT``) is not sent blind.
Sending touches no database (``sending.py``); each outcome is committed by the recorder before
its lane takes the next delivery (``recorder.py``).

This is the hot path of a fan-out, so it speaks SQLAlchemy Core: rows come back as tuples, not
ORM objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import TargetView
from gongkai.dispatch import metrics
from gongkai.dispatch.claims import Claimed, Outcome
from gongkai.dispatch.deps import IDS, Deps
from gongkai.dispatch.fence import fenced
from gongkai.dispatch.progress import CLAIMABLE
from gongkai.dispatch.queue import batches, offer
from gongkai.dispatch.quiet import quiet_until
from gongkai.dispatch.recorder import recorder_for
from gongkai.dispatch.rows import IN_FLIGHT, lease_end, stamp_jobs
from gongkai.dispatch.sending import send_parts
from gongkai.storage.models import Attempt, Delivery, DeliveryStatus, Item, ItemStatus
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
A = Attempt.__table__  # type: ignore[attr-defined]
SENDING = DeliveryStatus.sending.value


_CLAIMED_COLUMNS = (
    D.id,
    D.item_id,
    D.target_id,
    D.channel,
    D.payload,
    D.parts_done,
    D.attempts,
    D.give_up_at,
)


# What the claim looks at first, for every id of a job
_LOOK = select(
    D.id, D.item_id, D.channel, D.status, D.not_before, D.lease_until, D.lease_owner
).where(D.id.in_(IDS))


def claimable(now: datetime) -> Any:
    """Waiting rows, and rows whose worker's lease has run out."""
    return or_(
        D.status.in_(CLAIMABLE),
        and_(D.status == SENDING, D.lease_until.is_not(None), D.lease_until < now),
    )


async def deliver(deps: Deps, delivery_id: int) -> str:
    """Run one delivery as far as it can go now; returns a word for logs and tests."""
    return (await deliver_batch(deps, [delivery_id]))[0]


async def deliver_batch(deps: Deps, ids: list[int]) -> list[str]:
    words: dict[int, str] = {}
    later: list[tuple[str, list[int], datetime]] = []  # named jobs for rows that must wait
    jobs = await _take(deps, ids, words, later)
    try:
        if jobs:
            for (d, _), word in zip(jobs, await _send_all(deps, jobs), strict=True):
                words[d.id] = word
    finally:  # whatever went unrecorded keeps no renewed lease: another worker takes it over
        deps.held.difference_update(d.id for d, _ in jobs)
    for job, chunk, at in later:
        await offer(deps.pool, job, chunk, at=at)
    return [words.get(i, "?") for i in ids]


async def _take(
    deps: Deps,
    ids: list[int],
    words: dict[int, str],
    later: list[tuple[str, list[int], datetime]],
) -> list[tuple[Claimed, Any]]:
    """Claim what may go now and pair each claimed row with its send (or its refusal).

    Rows that must wait (scheduled, backing off, quiet hours) get a job of their own for when
    they are due, written into them; every id not claimed gets its word. One transaction,
    committed before anything is sent, so another worker sees the claims at once.
    """
    now = utcnow()
    async with deps.maker() as session:
        conn = await session.connection()  # Core statements skip the ORM's execution path
        rows = (await conn.execute(_LOOK, {"ids": ids})).all()
        found = {r[0]: r for r in rows}
        candidates: list[int] = []
        takeovers: set[int] = set()
        waiting: dict[tuple[str, datetime], list[int]] = defaultdict(list)
        holds: dict[tuple[str, str], tuple[str, datetime] | None] = {}  # (item, channel) → hold
        for delivery_id in ids:
            row = found.get(delivery_id)
            if row is None:
                words[delivery_id] = "missing"
                continue
            _, item_id, channel, status, not_before, lease_until, _ = row
            if status == SENDING and lease_until is not None and lease_until < now:
                takeovers.add(delivery_id)  # its worker stopped renewing: take it over
                candidates.append(delivery_id)
                continue
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
                # one job per whole second: rows backing off one by one still share jobs
                second = at.replace(microsecond=0) + timedelta(seconds=1 if at.microsecond else 0)
                waiting[word, second].append(delivery_id)
                continue
            candidates.append(delivery_id)
        for (word, at), wait_ids in waiting.items():
            named = batches(wait_ids)
            extra = {"status": DeliveryStatus.queued.value, "not_before": at}
            await stamp_jobs(session, named, **(extra if word == "quiet hours" else {}))
            later.extend((job, chunk, at) for job, chunk in named)
        if takeovers:  # unless that worker lives and only the database kept it from renewing
            alive = await fenced(deps.pool, {i: found[i][6] for i in takeovers})
            for delivery_id in alive:
                words[delivery_id] = "held by a live worker"
            takeovers -= alive
            candidates = [i for i in candidates if i not in alive]
        claimed = await _claim(conn, deps, candidates, now) if candidates else []
        unclaimed = set(candidates) - {c.id for c in claimed}
        if unclaimed:
            cancelled = await _cancel_recalled(session, unclaimed, now)
            for delivery_id in unclaimed:
                words[delivery_id] = (
                    "cancelled" if delivery_id in cancelled else "claimed elsewhere"
                )
        taken = [c.id for c in claimed if c.id in takeovers]
        in_flight = await _left_in_flight(session, taken, now) if taken else {}
        await session.commit()
        if taken:
            log.warning("took over %d deliveries whose worker's lease ran out", len(taken))
            await metrics.count_shared(deps.pool, "leases_taken_over", len(taken))
        await deps.prefetch_targets(
            session, {c.target_id for c in claimed if c.target_id is not None}
        )
        jobs: list[tuple[Claimed, TargetView | str]] = []
        for d in claimed:
            d.uncertain_part = in_flight.get(d.id)
            try:
                tv, active, reason = await deps.target(session, d.target_id, d.channel)
            except LookupError as exc:
                jobs.append((d, str(exc)))
                continue
            jobs.append((d, tv if active else f"target inactive: {reason or 'deactivated'}"))
    deps.held.update(c.id for c in claimed)  # from now on renewed until recorded
    return jobs


async def _left_in_flight(session: AsyncSession, ids: list[int], now: datetime) -> dict[int, int]:
    """Taken-over rows whose stopped worker had a part on the wire that must never go twice.

    Their attempt says ``sending``: the provider may have accepted it. It becomes ``uncertain``;
    the part is looked up with the provider where it can be (``Channel.was_sent``) and
    otherwise the delivery waits for a person, exactly as when an answer is lost.
    """
    rows = (
        await session.execute(
            select(A.c.delivery_id, A.c.part_index).where(
                A.c.delivery_id.in_(ids), A.c.outcome == IN_FLIGHT
            )
        )
    ).all()
    if not rows:
        return {}
    await session.execute(
        update(A)
        .where(A.c.delivery_id.in_(ids), A.c.outcome == IN_FLIGHT)
        .values(outcome="uncertain", error="the worker sending it stopped", finished_at=now)
    )
    return {delivery_id: part for delivery_id, part in rows}


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


_ITEMS = Item.__table__.c  # type: ignore[attr-defined]
# Core, not ``select(Item.id)``: an ORM entity anywhere in the claim sends the whole UPDATE
# through the ORM's bulk-update machinery, a few hundred microseconds a batch for nothing.
_RECALLED_ITEMS = select(_ITEMS.id).where(_ITEMS.status == ItemStatus.recalled.value)


def _recalled_items() -> Any:
    return _RECALLED_ITEMS


async def _claim(conn: AsyncConnection, deps: Deps, ids: list[int], now: datetime) -> list[Claimed]:
    result = await conn.execute(
        update(DELIVERY)
        .where(D.id.in_(IDS), claimable(now), D.item_id.not_in(_recalled_items()))
        .values(
            status=DeliveryStatus.sending,
            updated_at=now,
            lease_until=lease_end(deps, now),
            lease_owner=deps.worker_id,
        )
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
        .where(D.id.in_(ids), claimable(now), D.item_id.in_(_recalled_items()))
        .values(
            status=DeliveryStatus.cancelled,
            last_error="recalled",
            updated_at=now,
            lease_until=None,
            lease_owner=None,
        )
        .returning(D.id)
    )
    return {row[0] for row in result.all()}


async def _send_all(deps: Deps, jobs: list[tuple[Claimed, TargetView | str]]) -> list[str]:
    """Send a batch through a fixed number of lanes, each taking the next delivery in turn.

    A lane takes one of the worker's ``unrecorded`` tokens before it sends and the token comes
    back only when the outcome is committed (``recorder.py``): what a crash can leave
    sent-but-unrecorded is bounded by those tokens (twice ``worker_concurrency``), while the
    lanes go on sending during a commit. Once the worker is stopping, lanes send nothing new
    and the rest of the batch is handed back.
    """
    words: list[str] = ["handed back"] * len(jobs)
    turns = iter(range(len(jobs)))
    handed_back: list[int] = []

    recorder = recorder_for(deps)
    recording: list[tuple[int, asyncio.Future[str]]] = []

    async def lane() -> None:
        for i in turns:
            d, target = jobs[i]
            if deps.stopping:
                handed_back.append(d.id)
                continue
            await deps.unrecorded.acquire()
            try:
                if isinstance(target, str):  # the target is gone or inactive: nothing to send
                    outcome = Outcome(kind="permanent", parts_done=d.parts_done, error=target)
                else:
                    async with deps.slots:
                        if deps.stopping:
                            deps.unrecorded.release()
                            handed_back.append(d.id)
                            continue
                        outcome = await send_parts(deps, d, registry.get(d.channel), target)
            except BaseException:
                deps.unrecorded.release()
                raise
            recording.append((i, recorder.submit(d, outcome)))  # it gives the token back

    lanes = min(len(jobs), deps.settings.worker_concurrency)
    await asyncio.gather(*(lane() for _ in range(lanes)))
    for i, future in recording:
        words[i] = await future
    if handed_back:
        await hand_back(deps, handed_back)
    return words


async def hand_back(deps: Deps, ids: list[int]) -> None:
    """Claimed rows this worker will not send after all (it is stopping): queued again at once
    under a new job, so another worker takes them without waiting for the lease to run out."""
    named = batches(ids)
    try:
        async with deps.maker() as session:
            for job, chunk in named:
                await session.execute(
                    update(DELIVERY)
                    .where(D.id.in_(IDS), D.status == SENDING, D.lease_owner == deps.worker_id)
                    .values(
                        status=DeliveryStatus.queued,
                        lease_until=None,
                        lease_owner=None,
                        job=job,
                        updated_at=utcnow(),
                    ),
                    {"ids": chunk},
                )
            await session.commit()
    except Exception as exc:  # the leases run out instead, and another worker takes over
        log.warning("could not hand back %d deliveries (%s)", len(ids), exc)
        return
    deps.held.difference_update(ids)
    for job, chunk in named:
        await offer(deps.pool, job, chunk)
    log.info("handed back %d claimed deliveries", len(ids))


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
