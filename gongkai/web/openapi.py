"""The API description, generated from the same pydantic model that validates items."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gongkai import __version__
from gongkai.domain.bounds import MAX_ROW_ID, WINDOW_TEXT
from gongkai.domain.items import ItemIn
from gongkai.storage.models import DeliveryStatus
from gongkai.web.inputs import MAX_PARAM_CHARS

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error"],
}
_FIELD_ERRORS = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["error", "errors"],
}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT = {"type": "integer"}
# The item as the API shows it (``item_public``), not the ingest form (``Item``).
_ITEM_VIEW = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "title": {"type": "string"},
        "doc_number": _STR_OR_NULL,
        "issuer": {"type": "string"},
        "issued_at": {"type": "string"},
        "domain": _STR_OR_NULL,
        "regions": {"type": "array", "items": {"type": "string"}},
        "channels": {"type": "array", "items": {"type": "string"}},
        "urgent": {"type": "boolean"},
        "disclosure": {"type": "string"},
        "interprets": _STR_OR_NULL,
        "status": {"type": "string", "enum": ["scheduled", "publishing", "published", "recalled"]},
        "publish_at": _STR_OR_NULL,
        "published_at": _STR_OR_NULL,
        "recalled_at": _STR_OR_NULL,
        "publish_due": _STR_OR_NULL,
        "interpretation_due": _STR_OR_NULL,
        "deadline_warnings": {"type": "array", "items": {"type": "string"}},
        "languages": {"type": "array", "items": {"type": "string"}},
        "deliveries": {
            "description": "counts per channel and delivery status",
            "type": ["object", "null"],
            "additionalProperties": {"type": "object", "additionalProperties": _INT},
        },
    },
    "required": ["id", "kind", "title", "issuer", "issued_at", "status", "languages"],
}
_INGESTED = {
    "allOf": [
        {"$ref": "#/components/schemas/ItemView"},
        {
            "type": "object",
            "properties": {
                "planned": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": _INT,
                            "channel": {"type": "string"},
                            "region": _STR_OR_NULL,
                            "languages": {"type": "array", "items": {"type": "string"}},
                            "status": {"type": "string"},
                            "notes": {},
                        },
                        "required": ["id", "channel", "status"],
                    },
                },
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["planned", "warnings"],
        },
    ]
}
_DELIVERY = {
    "type": "object",
    "properties": {
        "id": _INT,
        "item": {"type": "string"},
        "channel": {"type": "string"},
        "region": _STR_OR_NULL,
        "target": _STR_OR_NULL,
        "languages": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string"},
        "attempts": _INT,
        "parts": _INT,
        "parts_done": _INT,
        "last_error": _STR_OR_NULL,
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "delivered_at": _STR_OR_NULL,
        "attempt_log": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["id", "item", "channel", "status", "attempts", "created_at", "updated_at"],
}
_DELIVERY_PAGE = {
    "type": "object",
    "properties": {
        "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
        "next_after": {
            "description": "pass as `after` for the next page; null on the last one",
            "type": ["integer", "null"],
        },
    },
    "required": ["deliveries", "next_after"],
}
_ITEM_DELIVERIES = {
    "type": "object",
    "properties": {
        "item": {"type": "string"},
        "deliveries": {
            "type": "array",
            "items": {
                "allOf": [
                    {"$ref": "#/components/schemas/Delivery"},
                    {"type": "object", "properties": {"payload": {"type": "object"}}},
                ]
            },
        },
    },
    "required": ["item", "deliveries"],
}
_RECALL = {
    "type": "object",
    "properties": {
        "item": {"type": "string"},
        "status": {"const": "recalled"},
        "cancelled": _INT,
        "deleted": _INT,
        "not_recallable": _INT,
        "errors": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["item", "status", "cancelled", "deleted", "not_recallable", "errors"],
}
_QUEUED = {
    "type": "object",
    "properties": {"id": _INT, "status": {"const": "queued"}},
    "required": ["id", "status"],
}
_UNANSWERED = {
    "type": "object",
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "normalized": {"type": "string"},
                    "example": {"type": "string"},
                    "count": _INT,
                    "regions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"code": _STR_OR_NULL, "count": _INT},
                        },
                    },
                    "languages": {"type": "array", "items": {"type": "string"}},
                    "last_asked": _STR_OR_NULL,
                },
                "required": ["normalized", "example", "count", "regions", "languages"],
            },
        },
        "total": _INT,
    },
    "required": ["groups", "total"],
}
_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "version": {"type": "string"},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["status", "checks"],
}


def _op(summary: str, role: str | None, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if role:
        op["security"] = [{"bearer": []}]
        op["x-role"] = role
        op["responses"] = {
            **responses,
            "401": _json("missing or invalid token", "Error"),
            "403": _json(f"needs the {role} role", "Error"),
        }
    return op


def _json(desc: str, schema: str) -> dict[str, Any]:
    return {
        "description": desc,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _text(desc: str, media_type: str = "text/plain") -> dict[str, Any]:
    return {"description": desc, "content": {media_type: {"schema": {"type": "string"}}}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


_ISO = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "description": "ISO 8601 date or date-time; the county's local time if no offset",
}


_OPERATION_IDS = {
    ("post", "/api/v1/items"): "postItem",
    ("get", "/api/v1/items/{id}"): "getItem",
    ("get", "/api/v1/items/{id}/deliveries"): "getItemDeliveries",
    ("post", "/api/v1/items/{id}/recall"): "recallItem",
    ("get", "/api/v1/deliveries"): "listDeliveries",
    ("post", "/api/v1/deliveries/{id}/retry"): "retryDelivery",
    ("get", "/api/v1/questions/unanswered"): "listUnanswered",
    ("get", "/api/v1/openapi.json"): "getOpenapi",
    ("get", "/p/{id}"): "getPage",
    ("get", "/p/{id}/print"): "getPrintSheet",
    ("get", "/p/{id}/script"): "getScript",
    ("get", "/p/{id}/script.wav"): "getScriptAudio",
    ("get", "/feed.xml"): "getFeed",
    ("get", "/healthz"): "getHealth",
    ("get", "/metrics"): "getMetrics",
}


def _link(operation: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": parameters}


# How one answer leads to the next request: what a client (and the stateful fuzzer) follows.
_FROM_ITEM = {
    "GetItem": _link("getItem", id="$response.body#/id"),
    "GetItemDeliveries": _link("getItemDeliveries", id="$response.body#/id"),
    "RecallItem": _link("recallItem", id="$response.body#/id"),
    "GetPage": _link("getPage", id="$response.body#/id"),
}
_RETRY_FIRST = {"RetryFirst": _link("retryDelivery", id="$response.body#/deliveries/0/id")}
_LINKS = {
    ("post", "/api/v1/items"): {
        status: {
            **_FROM_ITEM,
            "RetryPlanned": _link("retryDelivery", id="$response.body#/planned/0/id"),
        }
        for status in ("200", "201")
    },
    ("get", "/api/v1/items/{id}"): {"200": _FROM_ITEM},
    ("get", "/api/v1/items/{id}/deliveries"): {"200": _RETRY_FIRST},
    ("get", "/api/v1/deliveries"): {
        "200": {
            **_RETRY_FIRST,
            "GetItemOfFirst": _link("getItem", id="$response.body#/deliveries/0/item"),
        }
    },
}


def _name_and_link(paths: dict[str, Any]) -> None:
    for path, methods in paths.items():
        for method, op in methods.items():
            op["operationId"] = _OPERATION_IDS[(method, path)]
            for status, links in _LINKS.get((method, path), {}).items():
                op["responses"][status] = {**op["responses"][status], "links": links}


@lru_cache(maxsize=4)
def openapi_document(server: str) -> dict[str, Any]:
    item_schema = ItemIn.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = item_schema.pop("$defs", {})
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    delivery_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    text = {"type": "string", "maxLength": MAX_PARAM_CHARS}
    moment = {**_ISO, "description": f"{_ISO['description']}; within {WINDOW_TEXT}"}
    filters = [
        _query("item", text, "an item id"),
        _query("channel", text),
        _query("status", {"type": "string", "enum": list(DeliveryStatus.__members__)}),
        _query("region", text, "a region code; its descendants are included"),
        _query("since", moment),
        _query("until", moment),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 10000},
            "page size (100; 10000 for CSV)",
        ),
        _query(
            "after",
            {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
            "the `next_after` of the previous page",
        ),
        _query("format", {"type": "string", "enum": ["json", "csv"]}),
    ]
    bad_query = _json(
        "a query value malformed or out of bounds, named in errors[].field", "FieldErrors"
    )
    bad_body = _json("the body is not UTF-8, or nested too deep; named `(body)`", "FieldErrors")
    too_large = _json("the body is larger than 4 MiB", "FieldErrors")
    no_item = _json("no such item", "Error")
    html = _text("HTML", "text/html")
    public_missing = _text("no such item, or not public yet")
    withdrawn = _text("the item was recalled")
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Gongkai",
            "version": __version__,
            "description": "Government disclosure to every channel and language.",
        },
        "servers": [{"url": server}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Item": item_schema,
                **defs,
                "ItemView": _ITEM_VIEW,
                "Ingested": _INGESTED,
                "Delivery": _DELIVERY,
                "DeliveryPage": _DELIVERY_PAGE,
                "ItemDeliveries": _ITEM_DELIVERIES,
                "Recalled": _RECALL,
                "Queued": _QUEUED,
                "Unanswered": _UNANSWERED,
                "Health": _HEALTH,
                "Error": _ERROR,
                "FieldErrors": _FIELD_ERRORS,
            },
        },
        "paths": {
            "/api/v1/items": {
                "post": _op(
                    "Ingest an approved item and fan it out",
                    "publisher",
                    {
                        "201": _json("created, with planned deliveries", "Ingested"),
                        "200": _json(
                            "already ingested with the same content; nothing planned twice",
                            "Ingested",
                        ),
                        "409": _json("the id exists with different content", "Error"),
                        "400": bad_body,
                        "413": too_large,
                        "422": _json(
                            "invalid item (or not JSON); each bad field named", "FieldErrors"
                        ),
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
                    {"200": _json("the item", "ItemView"), "404": no_item},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/deliveries": {
                "get": _op(
                    "Every delivery of the item with attempts",
                    "viewer",
                    {"200": _json("deliveries", "ItemDeliveries"), "404": no_item},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/recall": {
                "post": _op(
                    "Stop pending deliveries and delete sent messages where possible",
                    "publisher",
                    {
                        "200": _json(
                            "what was cancelled, deleted, or cannot be recalled", "Recalled"
                        ),
                        "404": no_item,
                    },
                    parameters=id_param,
                )
            },
            "/api/v1/deliveries": {
                "get": _op(
                    "The delivery log (JSON or CSV with format=csv)",
                    "viewer",
                    {
                        "200": {
                            "description": "one page of deliveries, oldest first",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/DeliveryPage"}
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": bad_query,
                    },
                    parameters=filters,
                )
            },
            "/api/v1/deliveries/{id}/retry": {
                "post": _op(
                    "Requeue a dead or failed delivery",
                    "admin",
                    {
                        "200": _json("queued", "Queued"),
                        "404": {
                            "description": "no such delivery (plain text when the id is no number)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                },
                                "text/plain": {"schema": {"type": "string"}},
                            },
                        },
                        "409": _json("not retryable (delivered, pending, or recalled)", "Error"),
                    },
                    parameters=delivery_id,
                )
            },
            "/api/v1/questions/unanswered": {
                "get": _op(
                    "Residents' questions the FAQ could not answer, grouped, most asked first",
                    "viewer",
                    {
                        "200": _json("the groups", "Unanswered"),
                        "422": _json("a filter that cannot be read", "Error"),
                    },
                    parameters=[
                        _query("since", _ISO),
                        _query("region", {"type": "string"}, "a region code and its descendants"),
                        _query("platform", {"type": "string"}, "wechat, telegram, …"),
                        _query("limit", {"type": "integer"}, "groups (100; at most 500)"),
                    ],
                )
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/p/{id}": {
                "get": {
                    "summary": "The public page of an item",
                    "parameters": [
                        *id_param,
                        _query("lang", {"type": "string"}, "zh when the item has no such language"),
                    ],
                    "responses": {
                        "200": html,
                        "404": public_missing,
                        "410": _text("the withdrawal notice of a recalled item", "text/html"),
                    },
                }
            },
            "/p/{id}/print": {
                "get": {
                    "summary": "A printable notice-board sheet in the region's languages",
                    "parameters": [*id_param, _query("region", {"type": "string"})],
                    "responses": {
                        "200": html,
                        "404": _text("no such item, not public yet, or no such region"),
                        "410": withdrawn,
                    },
                }
            },
            "/p/{id}/script": {
                "get": {
                    "summary": "The loudspeaker script, per language",
                    "parameters": [*id_param, _query("lang", {"type": "string"})],
                    "responses": {
                        "200": html,
                        "404": _text("no such item or no script in that language"),
                        "410": withdrawn,
                    },
                }
            },
            "/p/{id}/script.wav": {
                "get": {
                    "summary": "The loudspeaker script read aloud",
                    "parameters": [*id_param, _query("lang", {"type": "string"})],
                    "responses": {
                        "200": {
                            "description": "audio in the speech engine's format",
                            "content": {
                                media: {"schema": {"type": "string", "format": "binary"}}
                                for media in ("audio/wav", "audio/mpeg", "audio/ogg")
                            },
                        },
                        "404": _text("no such item, or no script or voice in that language"),
                        "410": withdrawn,
                        "503": _text("speech synthesis failed"),
                    },
                }
            },
            "/feed.xml": {
                "get": {
                    "summary": "Atom feed of published items",
                    "responses": {"200": _text("Atom", "application/atom+xml")},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness with database and Redis checks",
                    "responses": {
                        "200": _json("ok", "Health"),
                        "503": _json("degraded", "Health"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": _text("Prometheus text format")},
                }
            },
        },
    }
    _name_and_link(document["paths"])
    _refusals_everywhere(document["paths"], bad_query)
    return document


def _refusals_everywhere(paths: dict[str, Any], bad_query: dict[str, Any]) -> None:
    """Any URL may be refused before its handler runs (a NUL in it, a query value out of
    bounds: ``web/errors.py``): the API answers 400 naming the part, a page a plain 400."""
    for path, ops in paths.items():
        for op in ops.values():
            if "400" not in op["responses"]:
                api = path.startswith("/api/")
                op["responses"]["400"] = bad_query if api else _text("a refused URL")
