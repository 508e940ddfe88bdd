"""What an outcome does to its delivery row: the new status, columns and word for the log.

Kept apart from the recording itself (``delivery._record``), which groups rows and writes them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gongkai.bot.settings import Settings
from gongkai.dispatch.queue import backoff_seconds
from gongkai.dispatch.sending import Outcome
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
    changes: dict[str, Any] = {"status": status}
    if kind == "delivered":
        changes.update(delivered_at=now, last_error=None)
    elif kind in ("recalled", "permanent"):
        changes["last_error"] = error
    return changes, word


def retry_or_give_up(
    settings: Settings, o: Outcome, failures: int, now: datetime
) -> tuple[dict[str, Any], str, float | None]:
    """A transient failure: back off and retry, or give up after the allowed attempts."""
    if failures >= settings.max_attempts:
        error = f"gave up after {failures} attempts: {o.error}"
        return {"status": DeliveryStatus.dead.value, "last_error": error}, "dead", None
    delay = backoff_seconds(
        failures, settings.retry_base_seconds, settings.retry_max_seconds, o.retry_after
    )
    changes = {
        "status": DeliveryStatus.failed.value,
        "last_error": o.error,
        "not_before": now + timedelta(seconds=delay),
    }
    return changes, "failed", delay
