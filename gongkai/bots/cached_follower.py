"""A resident's follower row as the bots keep it between messages: every column, cached in
Redis as JSON and rebuilt without a SELECT or pydantic's validation (they run on every
message), and the comparison that tells whether a conversation changed anything lasting."""

from __future__ import annotations

import json
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy.orm import make_transient_to_detached

from gongkai.bots.backlog import Who
from gongkai.storage.models import Follower
from gongkai.storage.types import utcnow

FOLLOWER_TTL = 600  # seconds a follower is read from Redis instead of the database
FOLLOWER_FIELDS = ("id", "platform", "account", "external_id", "region_code", "language",
                    "subscribed", "created_at", "last_seen_at", "state")  # fmt: skip


def follower_key(platform: str, account: str, external_id: str) -> str:
    return f"gongkai:bot:follower:{platform}:{account}:{external_id}"


def cached_json(follower: Follower) -> str:
    data = {name: getattr(follower, name) for name in FOLLOWER_FIELDS}
    for name in ("created_at", "last_seen_at"):
        data[name] = data[name].isoformat() if data[name] else None
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def from_cache(raw: bytes | str | dict[str, Any]) -> Follower:
    """The follower (cached, or read by `FollowerReads`) as a detached persistent object,
    without a SELECT: changes made to it are tracked, and flushed as an UPDATE like those of a
    loaded row once it is added to a session."""
    if isinstance(raw, dict):
        data = {name: raw[name] for name in FOLLOWER_FIELDS}
    else:
        data = json.loads(raw)
        for name in ("created_at", "last_seen_at"):
            data[name] = datetime.fromisoformat(data[name]) if data[name] else None
    follower = follower_of(data)
    make_transient_to_detached(follower)
    return follower


def follower_of(data: dict[str, Any]) -> Follower:
    """A Follower holding ``data`` (every column), made the way the ORM makes one for a row it
    loads: a tenth of the cost of ``Follower(**data)``, whose validation and default
    resolution this data (ours, already valid) does not need."""
    follower: Follower = Follower.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    follower.__dict__.update(data)
    return follower


def columns_of(follower: Follower) -> tuple[Any, ...]:
    """The follower's columns, to tell whether a conversation changed it (``state`` is only
    ever replaced, never changed in place, so holding the dict is enough)."""
    return _columns(follower)  # type: ignore[no-any-return]


_columns = attrgetter(*FOLLOWER_FIELDS)  # one C call: this runs three times per message


_SEEN_AT = FOLLOWER_FIELDS.index("last_seen_at")


def without_seen_at(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """Without ``last_seen_at``, which alone is worth no commit."""
    return state[:_SEEN_AT] + state[_SEEN_AT + 1 :]


def new_follower(who: Who) -> Follower:
    """A follower for a first contact, not in the database: once in the conversation's session,
    a query that needs its row (a subscription, a numbered offer) inserts it; a plain question
    leaves that to the backlog."""
    platform, account, external_id = who
    follower = follower_of(
        {
            "id": None,
            "platform": platform,
            "account": account,
            "external_id": external_id,
            "region_code": None,
            "language": "zh",
            "subscribed": True,
            "created_at": utcnow(),
            "last_seen_at": None,
            "state": {},
        }
    )
    return follower


def backlog_row(follower: Follower) -> dict[str, Any]:
    return {name: getattr(follower, name) for name in FOLLOWER_FIELDS if name != "id"}
