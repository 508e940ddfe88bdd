"""The tables of applications for disclosure (依申请公开) and their steps.

An application row carries the facts the statutory clock is computed from (the day handed in,
the office's confirmation, the correction, the extension) and, for lists and the deadlines
board, the due day computed from them at the last step. Every step is also an event row: who did
what and when, the record the law's 归档 asks for.

The applicant's name and contact are personal data: sealed with the ``Sealer`` (AES-GCM, the key
outside the database) and kept masked beside it for lists, like targets' phone numbers. The
lookup code is stored only as a keyed digest.

Imported at the end of ``storage.models`` so that every reader of the schema (Alembic, the
schema test) sees these tables; this module imports nothing from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gongkai.storage.types import JSONType, UTCDateTime, utcnow


def _when(nullable: bool = True) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


def _text() -> Any:
    return Field(default="", sa_column=Column(Text, nullable=False))


# Two clerks taking a step on the same file at once: the second one's write finds the version
# moved on and is refused (StaleDataError → ``StepRefused``), instead of overwriting the first.
_VERSION = Column("version", Integer, nullable=False, default=1)


class Application(SQLModel, table=True):
    __mapper_args__ = {"version_id_col": _VERSION}
    __table_args__ = (
        UniqueConstraint("year", "sequence"),
        # the lists and the board: open applications by due day
        Index("ix_application_status_due", "status", "due_on"),
        # the yearly table and "many applicants, one document": received in a span, by subject
        Index("ix_application_received_subject", "received_on", "subject_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=20)  # YSQ-2026-000123
    year: int
    sequence: int
    code_hash: str = Field(max_length=64)  # Sealer.lookup_key("application-code", number, code)
    applicant_type: str = Field(max_length=32)
    name_sealed: str = ""
    name_masked: str = Field(default="", max_length=64)
    contact_sealed: str = ""  # {"phone", "email", "address"}
    contact_masked: str = Field(default="", max_length=200)
    description: str = _text()
    purpose: str = _text()
    language: str = Field(default="zh", max_length=8)
    channel: str = Field(max_length=16)  # where it came from: domain.applications.Channel
    reply_channel: str = Field(max_length=16)
    follower_id: int | None = Field(default=None, foreign_key="follower.id")
    subject_key: str = Field(default="", max_length=64)  # "many applicants" groups
    status: str = Field(max_length=16)
    handler: str | None = Field(default=None, max_length=64)
    handed_in_at: datetime = _when(nullable=False)
    handed_in_on: date  # the county's calendar day of handed_in_at (or the letter's signature)
    confirmed_on: date | None = None
    received_on: date | None = None
    correction_requested_on: date | None = None
    correction_period: int | None = None
    correction_note: str | None = None
    corrected_on: date | None = None
    extension_approver: str | None = Field(default=None, max_length=64)
    extension_workdays: int | None = None
    extension_notified_on: date | None = None
    extension_reason: str | None = None
    due_on: date | None = None
    outcome: str | None = Field(default=None, max_length=16)
    outcome_reason: str | None = Field(default=None, max_length=32)
    reply_text: str | None = None
    reply_letter: str | None = None
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    closed_on: date | None = Field(default=None, index=True)  # answered or abandoned
    created_at: datetime = _when(nullable=False)
    updated_at: datetime = _when(nullable=False)
    version: int = Field(default=1, sa_column=_VERSION)


class ApplicationEvent(SQLModel, table=True):
    """One step of one application: 登记, 审核, 补正, 延期, 办理, 答复, 归档 …"""

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    at: datetime = _when(nullable=False)
    actor: str = Field(max_length=64)
    step: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
