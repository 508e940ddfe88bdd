"""The two shapes a delivery takes in a worker: the row it claimed, and what happened to it.

Sending produces an ``Outcome`` without touching the database; the recorder writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Claimed:
    """A delivery this worker has claimed: what sending needs and what recording appends to."""

    id: int
    item_id: str
    target_id: int | None
    channel: str
    payload: dict[str, Any]
    parts_done: int
    attempts: int
    give_up_at: datetime | None = None
    # taken over from a stopped worker with this part possibly on the wire: ask, never resend
    uncertain_part: int | None = None


@dataclass
class Outcome:
    """What happened to one delivery this time round."""

    kind: str  # delivered | pending | rate_limited | transient | permanent | recalled
    parts_done: int
    attempts: list[dict[str, Any]] = field(default_factory=list)  # Attempt rows to insert
    provider_message_ids: list[str] = field(default_factory=list)  # appended
    notes: list[str] = field(default_factory=list)  # appended
    error: str | None = None
    retry_after: float | None = None  # transient: the provider's; rate_limited: ours
    deactivate_target: bool = False
