"""Quiet hours: no SMS or loudspeaker at night unless the item is urgent."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_until(now: datetime, window: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When the current quiet period ends (UTC), or None when ``now`` is outside it."""
    if window is None:
        return None
    start, end = window
    local = now.astimezone(tz)
    t = local.time()
    if start == end:
        return None
    if start < end:  # e.g. 12:00-14:00
        inside = start <= t < end
        end_day = local.date()
    else:  # crosses midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)
