"""The one thing a resident's next message may answer: a numbered choice of the FAQ, a village
to bind, or a step of a guided application. Kept in the follower's ``state`` so it survives
between messages and processes; one slot, so starting one conversation ends the other."""

from __future__ import annotations

from typing import Any

from gongkai.storage.models import Follower


def pending_of(follower: Follower) -> dict[str, Any] | None:
    return (follower.state or {}).get("pending")


def set_pending(follower: Follower, pending: dict[str, Any] | None) -> None:
    state = dict(follower.state or {})  # a new dict: JSON columns track assignment only
    if pending is None:
        state.pop("pending", None)
    else:
        state["pending"] = pending
    follower.state = state
