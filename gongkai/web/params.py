"""Query parameters, declared once for both the handler and the OpenAPI document.

A route's query is a small pydantic model whose fields carry their bounds as ``Annotated``
metadata (``Text``, ``Whole``, ``Choice``, ``Moment``). ``read`` parses a request's query with
the bounded parsers of ``gongkai.web.inputs`` (so a value out of bounds is the same 400 naming
the parameter as everywhere else), and ``parameters`` describes the same fields for the
document, so the bounds a client is told are the bounds the handler enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from gongkai.domain.bounds import MAX_ROW_ID, WINDOW_TEXT
from gongkai.storage.models import DeliveryStatus
from gongkai.web.inputs import MAX_PARAM_CHARS, QueryRefused, datetime_param, int_param, text_param


class Param:
    """How one query value is read and described; an empty value counts as absent."""

    def read(self, q: Mapping[str, str], name: str, tz: tzinfo | None) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Param):
    """A short one-line value: an id, a code, a name."""

    max_chars: int = MAX_PARAM_CHARS

    def read(self, q: Mapping[str, str], name: str, tz: tzinfo | None) -> str | None:
        return text_param(q, name, max_chars=self.max_chars)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_chars}


@dataclass(frozen=True)
class Choice(Param):
    """One of a few fixed words."""

    choices: tuple[str, ...]

    def read(self, q: Mapping[str, str], name: str, tz: tzinfo | None) -> str | None:
        value = text_param(q, name)
        if value is not None and value not in self.choices:
            raise QueryRefused(name, f"one of {', '.join(self.choices)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


@dataclass(frozen=True)
class Whole(Param):
    """An integer within ``lo..hi``."""

    lo: int
    hi: int

    def read(self, q: Mapping[str, str], name: str, tz: tzinfo | None) -> int | None:
        return int_param(q, name, default=None, lo=self.lo, hi=self.hi)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class Moment(Param):
    """An ISO date or date-time inside the input window; without an offset it is read in the
    route's zone (``tz`` given to ``read``)."""

    def read(self, q: Mapping[str, str], name: str, tz: tzinfo | None) -> datetime | None:
        return datetime_param(q, name, tz)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "anyOf": [{"format": "date"}, {"format": "date-time"}],
            "description": "ISO 8601 date or date-time; the county's local time if no offset; "
            f"within {WINDOW_TEXT}",
        }


class Query(BaseModel):
    """A route's query parameters; each field's ``Param`` says how it is read and described."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def read(cls, q: Mapping[str, str], tz: tzinfo | None = None) -> Self:
        """The parsed query; a bad value raises ``QueryRefused`` naming it (answered as 400)."""
        values = {name: _param(name, info).read(q, name, tz) for name, info in _fields(cls)}
        return cls(**{name: value for name, value in values.items() if value is not None})

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """The OpenAPI description of each field, in declaration order."""
        described = []
        for name, info in _fields(cls):
            schema = _param(name, info).schema()
            if info.default is not None:
                schema["default"] = info.default
            entry: dict[str, Any] = {"name": name, "in": "query", "required": False}
            if info.description:
                entry["description"] = info.description
            described.append({**entry, "schema": schema})
        return described


def _fields(model: type[Query]) -> list[tuple[str, FieldInfo]]:
    return list(model.model_fields.items())


def _param(name: str, info: FieldInfo) -> Param:
    found = [m for m in info.metadata if isinstance(m, Param)]
    if len(found) != 1:
        raise TypeError(f"query field {name} needs exactly one Param (Text, Whole, …)")
    return found[0]


MAX_PAGE = 10000  # rows in one answer of the delivery log (JSON or CSV)
PAGE = 100


class DeliveryQuery(Query):
    """``GET /api/v1/deliveries``: the log's filters and its keyset page."""

    item: Annotated[str | None, Text(), Field(description="an item id")] = None
    channel: Annotated[str | None, Text()] = None
    status: Annotated[str | None, Choice(tuple(s.value for s in DeliveryStatus))] = None
    region: Annotated[
        str | None, Text(), Field(description="a region code; its descendants are included")
    ] = None
    since: Annotated[datetime | None, Moment()] = None
    until: Annotated[datetime | None, Moment()] = None
    limit: Annotated[
        int | None,
        Whole(lo=1, hi=MAX_PAGE),
        Field(description=f"page size ({PAGE}; {MAX_PAGE} for CSV)"),
    ] = None
    after: Annotated[
        int | None,
        Whole(lo=1, hi=MAX_ROW_ID),
        Field(description="the `next_after` of the previous page"),
    ] = None
    format: Annotated[
        str | None, Choice(("json", "csv")), Field(description="json when absent")
    ] = None


MAX_GROUPS = 500


class UnansweredQuery(Query):
    """``GET /api/v1/questions/unanswered``."""

    since: Annotated[datetime | None, Moment()] = None
    region: Annotated[
        str | None, Text(), Field(description="a region code and its descendants")
    ] = None
    platform: Annotated[str | None, Text(), Field(description="wechat, telegram, …")] = None
    limit: Annotated[
        int, Whole(lo=1, hi=MAX_GROUPS), Field(description=f"groups (at most {MAX_GROUPS})")
    ] = 100
