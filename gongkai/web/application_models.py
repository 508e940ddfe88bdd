"""What the applications API reads and answers, as pydantic models: the same classes build the
JSON bodies and generate the OpenAPI schemas (``application_doc``), as ``web/answers.py`` does
for items."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from gongkai.domain.applications import Outcome
from gongkai.domain.bounds import OneLine, Summary
from gongkai.domain.request_clock import MAX_EXTENSION_WORKDAYS
from gongkai.web.answers import Answer, Day, Moment

# --- answers ---------------------------------------------------------------------------------


class ApplicationReceipt(Answer):
    """What an applicant gets back: keep the code, it is shown only once."""

    number: str
    code: str
    status: str
    status_label: str
    lookup_url: str


class ApplicantStep(Answer):
    step: str
    label: str
    day: Day


class ApplicantView(Answer):
    """The applicant's view at ``GET /api/v1/applications/{number}?code=``: no names, no
    handlers, nothing the code's holder did not already know."""

    number: str
    status: str
    status_label: str
    received_on: Day | None
    due_on: Day | None
    correction_note: str | None
    correction_until: Day | None
    outcome: str | None
    outcome_label: str | None
    reason_label: str | None
    reply_letter: str | None
    steps: list[ApplicantStep]


class ApplicationEventPublic(Answer):
    at: Moment
    actor: str
    step: str
    label: str
    detail: dict[str, Any]


class ApplicationRow(Answer):
    number: str
    status: str
    status_label: str
    applicant_type: str
    applicant: str = Field(description="masked: 张**")
    contact: str = Field(description="masked: 138****5678")
    description: str
    channel: str
    handler: str | None
    received_on: Day | None
    due_on: Day | None
    workdays_left: int | None = Field(description="negative: working days overdue")


class ApplicationList(Answer):
    applications: list[ApplicationRow]
    total: int


class ApplicationRecord(ApplicationRow):
    """The whole file, for the office. ``applicant`` and ``contact`` are in the clear for the
    publisher and admin roles (the handlers), masked for viewers."""

    applicant_visible: bool
    applicant_detail: dict[str, str]
    purpose: str
    reply_channel: str
    language: str
    handed_in_on: Day
    correction_requested_on: Day | None
    correction_note: str | None
    correction_until: Day | None
    corrected_on: Day | None
    extension_approver: str | None
    extension_workdays: int | None
    outcome: str | None
    outcome_reason: str | None
    reply_text: str | None
    reply_letter: str | None
    attachments: list[dict[str, Any]]
    closed_on: Day | None
    warnings: list[str]
    events: list[ApplicationEventPublic]


APPLICATION_ANSWERS: tuple[type[Answer], ...] = (
    ApplicationReceipt,
    ApplicantView,
    ApplicationList,
    ApplicationRecord,
)

# --- steps (request bodies) --------------------------------------------------------------


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterStep(_Step):
    """登记: the office confirms an online application (that day is the day of receipt)."""

    step: Literal["register"]


class AcceptStep(_Step):
    """审核 passed: hand it to a handler."""

    step: Literal["accept"]
    handler: OneLine = Field(min_length=1)


class CorrectionStep(_Step):
    """补正: ask once, within 7 working days of receipt, naming what and by when."""

    step: Literal["request_correction"]
    note: Summary = Field(min_length=1)
    period_workdays: int = Field(default=15, ge=1, le=60)


class CorrectedStep(_Step):
    """The corrected application arrived: the clock starts again."""

    step: Literal["corrected"]
    text: Summary = ""


class ExtendStep(_Step):
    """延期: once, at most 20 working days, with the approving person in charge named."""

    step: Literal["extend"]
    approver: OneLine = Field(min_length=1)
    workdays: int = Field(ge=1, le=MAX_EXTENSION_WORKDAYS)
    reason: Summary = ""


class AnswerStep(_Step):
    """答复: the outcome as the yearly table counts it; the letter is rendered from the
    outcome's template."""

    step: Literal["answer"]
    outcome: Outcome
    reason: OneLine | None = None
    reply_text: Summary = ""


class ArchiveStep(_Step):
    """归档."""

    step: Literal["archive"]


StepIn = Annotated[
    RegisterStep
    | AcceptStep
    | CorrectionStep
    | CorrectedStep
    | ExtendStep
    | AnswerStep
    | ArchiveStep,
    Field(discriminator="step"),
]


class ApplicationStep(RootModel[StepIn]):
    """The body of ``POST /api/v1/applications/{number}/steps``: one step, chosen by ``step``."""
