"""What the JSON API answers, as pydantic models.

Every JSON body a handler sends is built through one of these (``answer``), and the OpenAPI
document's response schemas are generated from the same classes (``gongkai.web.openapi``), so
the two cannot drift apart: a key a query adds without its model is refused (``extra="forbid"``)
and shows up as a failing test, not as a document that quietly stopped being true.

The queries below the web floor (``storage.queries``) keep building plain dicts, because the CLI
and the console show the same rows; the models here validate those dicts on their way out.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from gongkai.domain.items import FieldError
from gongkai.storage.models import DeliveryStatus, ItemStatus, PlanningStatus

# Timestamps leave the storage floor as ``isoformat()`` text (always with an offset: the
# columns return aware UTC) and keep that exact form; the schema says what the text is.
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]


class Answer(BaseModel):
    """A JSON body the API sends: every key declared, every declared key always present."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Planning(Answer):
    """The item's planning job: its deliveries are rendered and written after the POST answers."""

    status: PlanningStatus
    planned: int = Field(description="deliveries written so far")
    total: int | None = Field(description="deliveries the item makes; null until counted")
    error: str | None = Field(description="why planning failed")


class ItemPublic(Answer):
    """The item as the API shows it (``storage.queries.item_public``), not its ingest form."""

    id: str
    kind: str
    title: str
    doc_number: str | None
    issuer: str | None
    issued_at: Day
    domain: str | None
    regions: list[str]
    channels: list[str]
    urgent: bool
    disclosure: str
    interprets: str | None
    status: ItemStatus
    publish_at: Moment | None
    published_at: Moment | None
    recalled_at: Moment | None
    publish_due: Day | None
    interpretation_due: Day | None
    deadline_warnings: list[str]
    languages: list[str]
    deliveries: dict[str, dict[str, int]] | None = Field(
        description="counts per channel and delivery status"
    )
    planning: Planning


class PlannedDelivery(Answer):
    id: int
    channel: str
    region: str | None
    languages: list[str]
    status: DeliveryStatus
    notes: list[str]


class Ingested(ItemPublic):
    """The answer to an ingest: the item, its planning, and the deliveries planned so far
    (none for a new item: its planning job writes them after this answer)."""

    planned: list[PlannedDelivery]
    warnings: list[str]


class AttemptPublic(Answer):
    number: int
    part: int
    outcome: str
    at: Moment
    provider_message_id: str | None
    error: str | None
    retry_after: float | None


class DeliveryPublic(Answer):
    """One row of the delivery log (``storage.queries.delivery_public``)."""

    id: int
    item: str
    channel: str
    region: str | None
    target: str | None = Field(description="the target's address, masked")
    languages: list[str]
    status: DeliveryStatus
    attempts: int
    parts: int
    parts_done: int
    provider_message_ids: list[str]
    last_error: str | None
    notes: list[str]
    created_at: Moment
    updated_at: Moment
    delivered_at: Moment | None


class DeliveryRecord(DeliveryPublic):
    """A delivery with everything about it: each attempt and the payload as rendered."""

    attempt_log: list[AttemptPublic]
    payload: dict[str, Any]


class DeliveryPage(Answer):
    deliveries: list[DeliveryPublic]
    next_after: int | None = Field(
        description="pass as `after` for the next page; null on the last one"
    )


class ItemDeliveries(Answer):
    item: str
    deliveries: list[DeliveryRecord]


class Recalled(Answer):
    item: str
    status: Literal["recalled"]
    cancelled: int
    deleted: int
    not_recallable: int
    errors: list[str]


class Queued(Answer):
    id: int
    status: Literal["queued"]


class RegionCount(Answer):
    code: str | None = Field(description="null: asked outside any known region")
    count: int


class UnansweredGroup(Answer):
    normalized: str
    example: str = Field(description="the latest wording")
    count: int
    regions: list[RegionCount]
    languages: list[str]
    last_asked: str | None


class UnansweredPage(Answer):
    groups: list[UnansweredGroup]
    total: int


class Health(Answer):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]


def _absent(value: object) -> bool:
    return value is None


class Error(Answer):
    """A refusal. ``message`` and ``request_id`` appear only when there is one, as before."""

    model_config = ConfigDict(extra="forbid")

    error: str
    message: str | SkipJsonSchema[None] = Field(default=None, exclude_if=_absent)
    request_id: str | SkipJsonSchema[None] = Field(default=None, exclude_if=_absent)


class FieldErrors(Answer):
    """A refusal naming each bad field (of the body, the query, or ``(body)`` itself)."""

    error: str
    errors: list[FieldError]


class OpenAPIDocument(Answer):
    """The API description itself, checked only at its top level (OpenAPI 3.1 is the rest)."""

    openapi: str
    info: dict[str, Any]
    servers: list[dict[str, Any]]
    components: dict[str, Any]
    paths: dict[str, Any]


# The models the document's schemas are generated from, in the order they are listed.
ANSWERS: tuple[type[Answer], ...] = (
    ItemPublic,
    Ingested,
    DeliveryPublic,
    DeliveryRecord,
    DeliveryPage,
    ItemDeliveries,
    Recalled,
    Queued,
    UnansweredPage,
    Health,
    Error,
    FieldErrors,
    OpenAPIDocument,
)


def dumps(model: Answer) -> str:
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False)


def answer(model: Answer, status: int = 200) -> web.Response:
    """The one way a JSON body leaves the API: through its model's serializer."""
    return web.Response(text=dumps(model), status=status, content_type="application/json")


def not_found(message: str) -> web.HTTPNotFound:
    """A 404 to raise from a handler, with the same body as a returned one."""
    return web.HTTPNotFound(text=dumps(Error(error=message)), content_type="application/json")
