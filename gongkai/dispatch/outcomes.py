"""What an outcome does to its delivery row: the new status, columns and word for the log.

Kept apart from the recording itself (``recorder.py``), which groups rows and writes them.
Every recorded outcome ends the worker's lease on the row; ``lease_owner`` stays, naming the
worker that last worked on it (which is how an operator, or a test, sees who sent what).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gongkai.config import Settings
from gongkai.dispatch.claims import Outcome
from gongkai.dispatch.queue import backoff_seconds
from gongkai.storage.models import DeliveryStatus

_SETTLED: dict[str, tuple[str, str]] = {  # kind → (status, word)
    "delivered": (DeliveryStatus.delivered.value, "delivered"),
    "pending": (DeliveryStatus.sending.value, "pending"),
    "rate_limited": (DeliveryStatus.queued.value, "rate limited"),
    "recalled": (DeliveryStatus.cancelled.value, "cancelled"),
    "permanent": (DeliveryStatus.dead.value, "dead"),
}


def settled(kind: str, error: str | None, now: datetime) -> tuple[dict[str, Any], str]:
    """The row's new columns for an outcome that needs no arithmetic, and its word."""
    status, word = _SETTLED[kind]
    changes: dict[str, Any] = {"status": status, "lease_until": None}
    if kind == "delivered":
        changes.update(delivered_at=now, last_error=None)
    elif kind in ("recalled", "permanent"):
        changes["last_error"] = error
    return changes, word


def retry_or_give_up(
    settings: Settings,
    o: Outcome,
    failures: int,
    now: datetime,
    give_up_at: datetime | None,
    urgent: bool,
) -> tuple[dict[str, Any], str, float | None]:
    """A transient failure: back off and retry until the delivery's deadline, then give up.

    The deadline is set at the first failure (``retry_deadline_hours``, shorter for urgent
    items); the last try falls on it rather than after it. ``max_attempts``, when set, also
    caps the count.
    """
    hours = settings.urgent_retry_deadline_hours if urgent else settings.retry_deadline_hours
    changes: dict[str, Any] = {"lease_until": None}
    if give_up_at is None:
        give_up_at = now + timedelta(hours=hours)
        changes["give_up_at"] = give_up_at
    over_count = bool(settings.max_attempts) and failures >= settings.max_attempts
    if over_count or now >= give_up_at:
        why = f"{failures} attempts" if over_count else f"{failures} attempts over {hours:g} h"
        error = f"gave up after {why}: {o.error}"
        changes.update(status=DeliveryStatus.dead.value, last_error=error)
        return changes, "dead", None
    delay = backoff_seconds(
        failures, settings.retry_base_seconds, settings.retry_max_seconds, o.retry_after
    )
    delay = min(delay, max(0.0, (give_up_at - now).total_seconds()))
    changes.update(
        status=DeliveryStatus.failed.value,
        last_error=o.error,
        not_before=now + timedelta(seconds=delay),
    )
    return changes, "failed", delay
