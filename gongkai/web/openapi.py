"""The API description, generated from the same pydantic model that validates items."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gongkai import __version__
from gongkai.domain.bounds import MAX_ROW_ID, WINDOW_TEXT
from gongkai.domain.items import ItemIn
from gongkai.web.inputs import MAX_PARAM_CHARS

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_FIELD_ERRORS = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _op(summary: str, role: str | None, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if role:
        op["security"] = [{"bearer": []}]
        op["x-role"] = role
        op["responses"] = {
            **responses,
            "401": {"description": "missing or invalid token"},
            "403": {"description": f"needs the {role} role"},
        }
    return op


def _ok(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}}


@lru_cache(maxsize=4)
def openapi_document(server: str) -> dict[str, Any]:
    item_schema = ItemIn.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = item_schema.pop("$defs", {})
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    text = {"type": "string", "maxLength": MAX_PARAM_CHARS}
    moment = {"type": "string", "format": "date-time", "description": f"within {WINDOW_TEXT}"}
    filter_schemas: dict[str, dict[str, Any]] = {
        "item": text,
        "channel": text,
        "status": text,
        "region": text,
        "since": moment,
        "until": moment,
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
        "after": {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
        "format": {"type": "string", "enum": ["json", "csv"]},
    }
    filters = [
        {"name": n, "in": "query", "required": False, "schema": schema}
        for n, schema in filter_schemas.items()
    ]
    bad_query = {
        "description": "a query value malformed or out of bounds, named in errors[].field",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FieldErrors"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gongkai",
            "version": __version__,
            "description": "Government disclosure to every channel and language.",
        },
        "servers": [{"url": server}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Item": item_schema, **defs, "Error": _ERROR, "FieldErrors": _FIELD_ERRORS},
        },
        "paths": {
            "/api/v1/items": {
                "post": _op(
                    "Ingest an approved item and fan it out",
                    "publisher",
                    {
                        "201": _ok("created, with planned deliveries"),
                        "200": _ok("already ingested with the same content; nothing planned twice"),
                        "409": {"description": "the id exists with different content"},
                        "400": {"description": "the body is not UTF-8 (field `(body)`)"},
                        "413": {"description": "the body is larger than 4 MiB"},
                        "422": {
                            "description": "invalid item; each bad field named",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/FieldErrors"}
                                }
                            },
                        },
                    },
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                        },
                    },
                )
            },
            "/api/v1/items/{id}": {
                "get": _op(
                    "The item, its status and delivery counts per channel",
                    "viewer",
                    {"200": _ok("the item"), "404": {"description": "no such item"}},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/deliveries": {
                "get": _op(
                    "Every delivery of the item with attempts",
                    "viewer",
                    {"200": _ok("deliveries")},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/recall": {
                "post": _op(
                    "Stop pending deliveries and delete sent messages where possible",
                    "publisher",
                    {"200": _ok("what was cancelled, deleted, or cannot be recalled")},
                    parameters=id_param,
                )
            },
            "/api/v1/deliveries": {
                "get": _op(
                    "The delivery log (JSON or CSV with format=csv)",
                    "viewer",
                    {"200": _ok("deliveries"), "400": bad_query},
                    parameters=filters,
                )
            },
            "/api/v1/deliveries/{id}/retry": {
                "post": _op(
                    "Requeue a dead or failed delivery",
                    "admin",
                    {"200": _ok("queued"), "409": {"description": "not retryable"}},
                    parameters=id_param,
                )
            },
            "/p/{id}": {
                "get": {
                    "summary": "The public page of an item",
                    "parameters": [
                        *id_param,
                        {"name": "lang", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "HTML"}},
                }
            },
            "/feed.xml": {
                "get": {
                    "summary": "Atom feed of published items",
                    "responses": {"200": {"description": "Atom"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness with database and Redis checks",
                    "responses": {"200": {"description": "ok"}, "503": {"description": "degraded"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text"}},
                }
            },
        },
    }
