"""Every table, in one module until it hurts (see style.md).

The delivery row, not the queue, is the record of truth and the guard against sending twice.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from gongkai.storage.types import JSONType, UTCDateTime, utcnow


def _json(default: Any = None, **kw: Any) -> Any:
    factory = (
        (lambda: list(default))
        if isinstance(default, list)
        else ((lambda: dict(default)) if isinstance(default, dict) else None)
    )
    if factory is not None:
        return Field(default_factory=factory, sa_column=Column(JSONType, nullable=False), **kw)
    return Field(default=default, sa_column=Column(JSONType, nullable=True), **kw)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=index))
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=index))


class DeliveryStatus(StrEnum):
    planned = "planned"
    scheduled = "scheduled"  # waiting for the item's publish_at
    queued = "queued"
    sending = "sending"  # in a worker, or accepted and awaiting the provider's verdict
    delivered = "delivered"
    failed = "failed"  # a transient failure; will retry
    dead = "dead"  # permanent failure or attempts exhausted
    cancelled = "cancelled"  # recalled before it went out


PENDING_STATUSES = (
    DeliveryStatus.planned,
    DeliveryStatus.scheduled,
    DeliveryStatus.queued,
    DeliveryStatus.failed,
)
FINAL_STATUSES = (DeliveryStatus.delivered, DeliveryStatus.dead, DeliveryStatus.cancelled)


class ItemStatus(StrEnum):
    scheduled = "scheduled"
    publishing = "publishing"
    published = "published"
    recalled = "recalled"


class PlanningStatus(StrEnum):
    """Where an item's planning job is: the fan-out runs after the POST has answered."""

    pending = "pending"  # stored, its planning job queued
    running = "running"  # a worker holds the planning lease and writes deliveries chunk by chunk
    done = "done"  # every delivery is planned (the rows of earlier releases are all done)
    failed = "failed"  # stopped on an error (``planning_error``); sending the item again retries
    cancelled = "cancelled"  # recalled before planning finished


PLANNING_OPEN = (PlanningStatus.pending, PlanningStatus.running)


class Role(StrEnum):
    viewer = "viewer"
    publisher = "publisher"
    admin = "admin"


ROLE_RANK = {Role.viewer: 0, Role.publisher: 1, Role.admin: 2}


# --- directory ------------------------------------------------------------------------------


class Region(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=12)
    parent_code: str | None = Field(default=None, foreign_key="region.code", index=True)
    name: str
    names: dict[str, str] = _json({})
    languages: list[str] = _json([])  # wanted, in order; empty = inherit from the parent
    # "/150627/150627100/150627100201/": a subtree is one LIKE prefix query.
    path: str = Field(index=True, max_length=200)
    level: int = 0


class Account(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True, max_length=32)
    name: str = Field(max_length=64)
    provider: str | None = Field(default=None, max_length=32)
    region_code: str | None = Field(default=None, max_length=12)
    config: dict[str, Any] = _json({})  # the non-secret fields (app_id, sign_name, …)
    secrets_sealed: str = ""  # Sealer.seal({field: value}) for secret fields
    secrets_masked: dict[str, str] = _json({})


class Target(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(foreign_key="region.code", index=True, max_length=12)
    channel: str = Field(index=True, max_length=32)
    account_name: str | None = Field(default=None, max_length=64)
    address_sealed: str = ""  # robot_key, phones, chat_id … sealed
    address_masked: str = ""
    # Sealer.lookup_key(channel, region, address): makes directory import idempotent and lets
    # inbound events (a Telegram chat, an SMS number) find their target without decrypting.
    lookup: str = Field(unique=True, max_length=64)
    options: dict[str, Any] = _json({})
    active: bool = True
    inactive_reason: str | None = None


class DirectoryImport(SQLModel, table=True):
    """A directory import that changed the directory or read a new file: the file's keyed digest
    (as read, ``${NAME}`` filled in) and its counts, so the same file imported again can be told
    to change nothing without being read (storage/directory.py)."""

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(default="", max_length=64)  # empty: imported from data, not a file
    imported_at: datetime = _ts(nullable=False)
    counts: dict[str, Any] = _json({})


# --- items ----------------------------------------------------------------------------------


class Item(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=128)
    kind: str = Field(index=True, max_length=16)
    title: str
    doc_number: str | None = None
    issuer: str | None = None
    issued_at: date
    approved_by: str
    approved_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    secrecy_reviewed: bool = True
    disclosure: str = Field(max_length=32)
    domain: str = Field(index=True, max_length=32)
    regions: list[str] = _json([])
    channels: list[str] = _json([])
    urgent: bool = False
    publish_at: datetime | None = _ts()
    interprets: str | None = Field(default=None, index=True, max_length=128)
    summary: str = ""
    body: str = ""
    redacted_body: str | None = None
    catalog: dict[str, Any] = _json({})
    translations: dict[str, dict[str, str]] = _json({})
    attachments: list[dict[str, Any]] = _json([])
    options: dict[str, Any] = _json({})  # per-channel wishes, e.g. {"wechat": {"mass_send": …}}
    status: str = Field(default=ItemStatus.publishing, index=True, max_length=16)
    publish_due: date | None = None
    interpretation_due: date | None = None
    deadline_warnings: list[str] = _json([])
    published_at: datetime | None = _ts(index=True)
    recalled_at: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False, index=True)
    created_by: str | None = None
    content_hash: str = Field(default="", max_length=64)
    # Planning runs as a job (dispatch/plan_job.py): its state, ``planned`` of ``planning_total``
    # deliveries written so far, the job carrying it and the lease of the worker running it, so
    # reconciliation can queue it again when Redis lost the job or the worker died.
    planning_status: str = Field(default=PlanningStatus.done, index=True, max_length=16)
    planned: int = 0
    planning_total: int | None = None
    planning_error: str | None = None
    planning_job: str | None = Field(default=None, max_length=64)
    planning_lease_until: datetime | None = _ts()
    planning_owner: str | None = Field(default=None, max_length=64)

    @property
    def public_body(self) -> str:
        """What may be shown: the redacted text when the attribute says 删减后公开."""
        return self.redacted_body if self.disclosure == "public_redacted" else self.body


class Delivery(SQLModel, table=True):
    __table_args__ = (
        # "is any of this item's deliveries still open?" after every batch: a seek, not a scan
        Index("ix_delivery_item_status", "item_id", "status"),
        Index("ix_delivery_status_created", "status", "created_at"),
        # the reconciler's two questions: which open rows are overdue, whose lease has run out
        Index("ix_delivery_status_not_before", "status", "not_before"),
        Index("ix_delivery_status_lease", "status", "lease_until"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # indexed by ix_delivery_item_status, whose leading column it is
    item_id: str = Field(foreign_key="item.id", max_length=128)
    target_id: int | None = Field(default=None, foreign_key="target.id", index=True)
    channel: str = Field(index=True, max_length=32)
    region_code: str | None = Field(default=None, index=True, max_length=12)
    languages: list[str] = _json([])
    # The rendered payload exactly as it will be sent: {"parts": [...], "meta": {...}}.
    payload: dict[str, Any] = _json({})
    notes: list[str] = _json([])  # e.g. "translation missing: mn"
    # indexed by ix_delivery_status_created, whose leading column it is
    status: str = Field(default=DeliveryStatus.planned, max_length=16)
    attempts: int = 0
    parts_done: int = 0
    provider_message_ids: list[str] = _json([])
    last_error: str | None = None
    not_before: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = _ts()
    dedup_key: str = Field(unique=True, max_length=200)
    # A worker's claim: it holds the row while ``lease_until`` is ahead and renews it while it
    # works; past it, any worker takes the row over. NULL on a row awaiting a provider's verdict.
    # ``lease_owner`` (host:pid:tag) stays after the outcome: the worker that last worked on it.
    lease_until: datetime | None = _ts()
    lease_owner: str | None = Field(default=None, max_length=64)
    # The arq job carrying the row, so reconciliation can tell a lost job from a waiting one.
    job: str | None = Field(default=None, max_length=64)
    # Transient failures are retried until then (set at the first failure; cleared by a retry).
    give_up_at: datetime | None = _ts()


class Attempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    number: int
    part_index: int = 0
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    # delivered | pending | transient | permanent | uncertain | requeued (an admin's retry) |
    # sending (written before a part that must never go twice leaves; still there = in flight)
    outcome: str = Field(max_length=16)
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


# --- people and access ----------------------------------------------------------------------


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: str = Field(max_length=16)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _ts(nullable=False)
    revoked: bool = False


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str
    created_at: datetime = _ts(nullable=False)
    active: bool = True


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True)
    actor: str
    action: str = Field(max_length=32)  # publish | recall | retry | faq-edit | …
    item_id: str | None = Field(default=None, index=True, max_length=128)
    detail: dict[str, Any] = _json({})


# --- residents ------------------------------------------------------------------------------


class Follower(SQLModel, table=True):
    """A resident who talks to a bot: a WeChat openid or a Telegram chat."""

    __table_args__ = (UniqueConstraint("platform", "account", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)  # wechat | telegram
    account: str = Field(max_length=64)
    external_id: str = Field(max_length=128)  # openid / chat id
    region_code: str | None = Field(default=None, index=True, max_length=12)
    language: str = "zh"
    subscribed: bool = True
    created_at: datetime = _ts(nullable=False)
    last_seen_at: datetime | None = _ts()
    state: dict[str, Any] = _json({})  # pending "did you mean" choices and the like


class Subscription(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("follower_id", "domain"),)
    id: int | None = Field(default=None, primary_key=True)
    follower_id: int = Field(foreign_key="follower.id", index=True)
    domain: str = Field(max_length=32)
    created_at: datetime = _ts(nullable=False)


class FaqEntry(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=128)
    question: str
    keywords: list[str] = _json([])
    answer: str
    answers: dict[str, str] = _json({})
    domain: str | None = None
    regions: list[str] = _json([])
    updated_at: datetime = _ts(nullable=False)


class FaqSynonym(SQLModel, table=True):
    word: str = Field(primary_key=True, max_length=64)
    synonyms: list[str] = _json([])


class Question(SQLModel, table=True):
    """Every question a resident asked, answered or not: the signal of what people need."""

    id: int | None = Field(default=None, primary_key=True)
    asked_at: datetime = _ts(nullable=False, index=True)
    platform: str = Field(max_length=16)
    follower_id: int | None = Field(default=None, index=True)
    region_code: str | None = Field(default=None, index=True, max_length=12)
    language: str = "zh"
    text: str
    normalized: str = Field(index=True, max_length=200)
    answered: bool = Field(default=False, index=True)
    faq_id: str | None = None
    score: float | None = None


class ProviderQuota(SQLModel, table=True):
    """Scarce provider quotas (WeChat mass sends) counted so a send that would exceed is refused."""

    __table_args__ = (UniqueConstraint("channel", "account", "kind", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    account: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    period: str = Field(max_length=16)  # "2026-11-24" or "2026-11"
    used: int = 0


# --- short links ------------------------------------------------------------------------------


class ShortLink(SQLModel, table=True):
    """``/s/{code}``: one item's page in one language as one channel handed it out.

    Drawn once per item, language and channel and kept, so a re-plan hands out the same code;
    ``opens`` counts the redirects, nothing else about the reader (no address, no browser).
    """

    __tablename__ = "short_link"
    __table_args__ = (UniqueConstraint("item_id", "channel", "lang", name="uq_short_link_key"),)
    code: str = Field(primary_key=True, max_length=16)
    item_id: str = Field(foreign_key="item.id", max_length=128)
    channel: str = Field(max_length=32)
    lang: str = Field(max_length=16)
    opens: int = 0
    created_at: datetime = _ts(nullable=False)


# The application tables live in their own module; imported here so the schema sees them.
from gongkai.storage.applications import Application, ApplicationEvent  # noqa: E402,F401
