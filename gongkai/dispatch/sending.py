"""Sending one claimed delivery's remaining parts. No database here: the outcome is returned
and recorded by the caller, for a whole batch of deliveries in one transaction."""

from __future__ import annotations

import logging
import time
from typing import Any

from gongkai.channels.base import (
    Channel,
    PermanentError,
    SentPart,
    TargetView,
    TransientError,
    UncertainError,
)
from gongkai.dispatch import metrics
from gongkai.dispatch.claims import Claimed, Outcome
from gongkai.dispatch.deps import Deps
from gongkai.dispatch.planning import open_part
from gongkai.dispatch.queue import recalled_key
from gongkai.dispatch.rows import DATABASE_DOWN, mark_started, save_accepted
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)


async def send_parts(deps: Deps, d: Claimed, channel: Channel, tv: TargetView) -> Outcome:
    parts = d.payload.get("parts", [])
    out = Outcome(kind="delivered", parts_done=d.parts_done)
    state: dict[str, Any] = {}
    number = d.attempts
    first = d.parts_done  # save_accepted moves d.parts_done along as parts are accepted
    for index in range(first, len(parts)):
        if index > first and await _recalled(deps, d.item_id):
            out.kind, out.error = (
                "recalled",
                f"recalled while sending; stopped before part {index + 1}",
            )
            return out
        part = open_part(parts[index], deps.sealer)
        if d.uncertain_part == index:  # a stopped worker's request may have gone out
            if not await _found_sent(deps, d, channel, tv, part, index, out):
                return out
            continue
        try:
            wait = (
                await deps.limiter.acquire(channel.rate_limits(tv, part))
                if deps.limiter.enabled
                else None
            )
        except Exception as exc:  # the shared limits live in Redis: no slot, no send
            out.kind = "transient"
            out.error = f"not sent: the rate limits could not be checked ({type(exc).__name__})"
            return out
        if wait is not None:  # not an attempt: the job is deferred, other channels flow on
            metrics.RATE_LIMITED.labels(d.channel).inc()
            out.kind, out.retry_after = "rate_limited", wait
            return out
        number += 1
        attempt: dict[str, Any] = {  # every column, so a batch inserts with one executemany
            "delivery_id": d.id,
            "number": number,
            "part_index": index,
            "started_at": utcnow(),
            "finished_at": None,
            "outcome": None,
            "provider_message_id": None,
            "error": None,
            "retry_after": None,
        }
        out.attempts.append(attempt)
        if not channel.resend_when_uncertain:  # a takeover must know this part may have left
            try:
                await mark_started(deps, attempt)
            except DATABASE_DOWN as exc:  # nothing left: an ordinary transient failure
                error = f"not sent: the database was unavailable ({type(exc).__name__})"
                attempt.update(outcome="transient", error=error, finished_at=utcnow())
                out.kind, out.error = "transient", error
                return out
        started = time.perf_counter()
        try:
            sent: SentPart = await channel.send(part, deps.context(d, tv, index, state))
        except TransientError as exc:
            attempt.update(outcome="transient", error=str(exc), retry_after=exc.retry_after)
            out.kind, out.error, out.retry_after = "transient", str(exc), exc.retry_after
            return out
        except UncertainError as exc:  # never resent blindly: the delivery waits for a person
            attempt.update(outcome="uncertain", error=str(exc))
            out.kind = "permanent"
            out.error = (
                f"part {index + 1}: {exc}; the provider may have sent it — check its records "
                "before retrying"
            )
            return out
        except PermanentError as exc:
            attempt.update(outcome="permanent", error=str(exc))
            out.kind, out.error = "permanent", str(exc)
            out.deactivate_target = exc.deactivate_target
            return out
        except Exception as exc:  # a bug or an unforeseen network error: retry, and say what
            log.exception("delivery %s: unexpected error", d.id)
            attempt.update(outcome="transient", error=f"{type(exc).__name__}: {exc}")
            out.kind, out.error = "transient", attempt["error"]
            return out
        finally:
            attempt["finished_at"] = utcnow()
            metrics.latency(d.channel).observe(time.perf_counter() - started)
        attempt.update(
            outcome="pending" if sent.pending else "delivered",
            provider_message_id=sent.provider_message_id,
            error=f"partly refused: {sent.extra['failed']}" if sent.extra.get("failed") else None,
        )
        out.parts_done = index + 1
        if sent.provider_message_id:
            out.provider_message_ids.append(sent.provider_message_id)
        if sent.extra.get("note"):
            out.notes.append(str(sent.extra["note"]))
        if sent.pending:
            out.kind = "pending"
        elif index + 1 < len(parts):
            try:  # a takeover resumes after this part, not before it
                await save_accepted(deps, d, out)
            except Exception:  # the final record still writes it
                log.warning("delivery %s: part %d not saved yet", d.id, index + 1, exc_info=True)
    return out


async def _recalled(deps: Deps, item_id: str) -> bool:
    """The fast flag a recall sets in Redis; without Redis the claim's SQL check still holds."""
    try:
        return bool(await deps.pool.exists(recalled_key(item_id)))
    except Exception:
        return False


async def _found_sent(
    deps: Deps, d: Claimed, channel: Channel, tv: TargetView, part: Any, index: int, out: Outcome
) -> bool:
    """Ask the provider about a part a stopped worker had on the wire. Found: it counts as
    accepted (True). Not found, or nobody can tell: the delivery waits for a person."""
    try:
        sent = await channel.was_sent(part, deps.context(d, tv, index))
    except Exception:  # the lookup failed: no better than not asking
        log.warning("delivery %s: looking up part %d failed", d.id, index + 1, exc_info=True)
        sent = None
    if sent is None:
        out.kind = "permanent"
        out.error = (
            f"part {index + 1}: the worker sending it stopped; the provider may have accepted it "
            "— check its send records before retrying"
        )
        return False
    out.parts_done = index + 1
    if sent.provider_message_id:
        out.provider_message_ids.append(sent.provider_message_id)
    if sent.extra.get("note"):
        out.notes.append(str(sent.extra["note"]))
    return True
