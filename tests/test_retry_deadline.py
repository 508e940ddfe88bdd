"""Transient failures are retried until a deadline, not a count: an outage of half an hour
loses nothing, and a delivery still failing after its deadline is given up with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gongkai.config import Settings
from gongkai.dispatch.claims import Outcome
from gongkai.dispatch.outcomes import retry_or_give_up

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def failing() -> Outcome:
    return Outcome(kind="transient", parts_done=0, error="HTTP 502 from the provider")


def test_a_half_hour_outage_is_retried_through_and_the_waits_stay_short():
    s = Settings(retry_base_seconds=5, retry_max_seconds=300)
    now, give_up_at, failures, waits = T0, None, 0, []
    while now < T0 + timedelta(minutes=30):
        failures += 1
        changes, word, delay = retry_or_give_up(s, failing(), failures, now, give_up_at, False)
        assert word == "failed" and changes["status"] == "failed", (failures, changes)
        give_up_at = changes.get("give_up_at", give_up_at)
        waits.append(delay)
        now += timedelta(seconds=delay or 0)
    assert give_up_at == T0 + timedelta(hours=24)  # set at the first failure
    assert failures > 8  # the old count would have given up long before
    assert max(waits) <= 300  # back within five minutes of the provider's return


def test_past_the_deadline_the_delivery_is_given_up_naming_how_long_it_tried():
    s = Settings(retry_deadline_hours=24)
    changes, word, delay = retry_or_give_up(
        s, failing(), 40, T0, T0 - timedelta(seconds=1), urgent=False
    )
    assert word == "dead" and delay is None
    why = "gave up after 40 attempts over 24 h: HTTP 502 from the provider"
    assert changes["last_error"] == why


def test_urgent_items_have_the_shorter_deadline_and_the_last_try_falls_on_it():
    s = Settings(retry_deadline_hours=24, urgent_retry_deadline_hours=2, retry_max_seconds=3600)
    changes, _, _ = retry_or_give_up(s, failing(), 1, T0, None, urgent=True)
    assert changes["give_up_at"] == T0 + timedelta(hours=2)
    almost = T0 + timedelta(hours=2) - timedelta(seconds=10)
    changes, word, delay = retry_or_give_up(s, failing(), 12, almost, changes["give_up_at"], True)
    assert word == "failed" and delay is not None and delay <= 10


def test_a_count_cap_still_applies_when_an_operator_sets_one():
    s = Settings(max_attempts=3)
    _, word, _ = retry_or_give_up(s, failing(), 3, T0, T0 + timedelta(hours=1), False)
    assert word == "dead"
