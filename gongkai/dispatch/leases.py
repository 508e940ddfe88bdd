"""A worker's leases on the rows it holds, kept ahead of the clock.

A row being sent carries ``lease_until`` and ``lease_owner``; while the owner renews the lease
nobody else takes the row. A worker that stops renewing (killed, its machine gone) loses its
rows to the next claim once the lease has run out (``delivery.claimable``). A database outage
stops renewals as well; the fence in Redis (``fence.py``) keeps a live worker's rows meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from gongkai.dispatch.deps import Deps
from gongkai.dispatch.fence import lower_fence, raise_fence
from gongkai.storage.models import Delivery, DeliveryStatus
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
SENDING = DeliveryStatus.sending.value


async def renew_leases_forever(deps: Deps) -> None:
    """Keep the leases on the rows this worker holds ahead of the clock, three times a lease."""
    every = deps.settings.lease_seconds / 3
    fenced = False
    while True:
        await asyncio.sleep(every)
        try:
            await renew_leases(deps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: fence the rows in Redis meanwhile
            log.warning("could not renew leases: %s: %s", type(exc).__name__, exc)
            held, seconds = deps.held, deps.settings.lease_seconds
            fenced = await raise_fence(deps.pool, deps.worker_id, held, seconds) or fenced
            continue
        if fenced:  # renewed: the leases guard the rows again
            await lower_fence(deps.pool, deps.worker_id)
            fenced = False


async def renew_leases(deps: Deps, now: datetime | None = None) -> int:
    held = list(deps.held)
    if not held:
        return 0
    now = now or utcnow()
    until = now + timedelta(seconds=deps.settings.lease_seconds)
    renewed = 0
    async with deps.maker() as session:
        for start in range(0, len(held), 1000):
            result = await session.execute(
                update(DELIVERY)
                .where(
                    D.id.in_(held[start : start + 1000]),
                    D.status == SENDING,
                    D.lease_owner == deps.worker_id,
                )
                .values(lease_until=until)
            )
            renewed += result.rowcount or 0
        await session.commit()
    return renewed
