"""The API description: glue around schemas generated from the models the handlers use.

Request and response bodies are the pydantic models of ``gongkai.domain.items`` (what is
ingested) and ``gongkai.web.answers`` (what is answered); query parameters come from the
``gongkai.web.params`` declarations the handlers parse with. What is written here by hand is
only what no model knows: the paths, each operation's summary, role and statuses, and the
links from one answer to the next request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gongkai import __version__
from gongkai.domain.bounds import MAX_ROW_ID
from gongkai.domain.items import ItemIn
from gongkai.web import application_doc
from gongkai.web.answers import (
    ANSWERS,
    Answer,
    DeliveryPage,
    Error,
    FieldErrors,
    Health,
    Ingested,
    ItemDeliveries,
    ItemPublic,
    OpenAPIDocument,
    Queued,
    Recalled,
    UnansweredPage,
)
from gongkai.web.params import DeliveryQuery, UnansweredQuery

REF = "#/components/schemas/{model}"


def component_schemas() -> dict[str, Any]:
    """Every schema of the document, generated: the item as ingested (``Item``, read in
    validation mode) and each answer (serialization mode: what the handlers send)."""
    item = ItemIn.model_json_schema(ref_template=REF)
    schemas: dict[str, Any] = {"Item": item, **item.pop("$defs", {})}
    for name, model in application_doc.REQUESTS.items():
        schemas[name] = model.model_json_schema(ref_template=REF)
        schemas.update(schemas[name].pop("$defs", {}))
    answer_models = [*ANSWERS, *application_doc.ANSWERS]
    _, answers = models_json_schema([(m, "serialization") for m in answer_models], ref_template=REF)
    for name, schema in answers.get("$defs", {}).items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"two different schemas are named {name}")
        schemas[name] = schema
    return schemas


def _op(summary: str, role: str | None, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if role:
        op["security"] = [{"bearer": []}]
        op["x-role"] = role
        op["responses"] = {
            **responses,
            "401": _json("missing or invalid token", Error),
            "403": _json(f"needs the {role} role", Error),
        }
    return op


def _ref(model: type[BaseModel], name: str | None = None) -> dict[str, Any]:
    return {"$ref": REF.format(model=name or model.__name__)}


def _json(desc: str, model: type[Answer]) -> dict[str, Any]:
    """A JSON answer: always one of the answer models, never a schema written here."""
    return {"description": desc, "content": {"application/json": {"schema": _ref(model)}}}


def _text(desc: str, media_type: str = "text/plain") -> dict[str, Any]:
    return {"description": desc, "content": {media_type: {"schema": {"type": "string"}}}}


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
    **application_doc.OPERATION_IDS,
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


def _path_id(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "id", "in": "path", "required": True, "schema": schema}]


def _page_query(name: str, description: str = "") -> dict[str, Any]:
    """A public page's query value: read leniently by the page (an unknown language falls back
    to Chinese), so only its type is told."""
    param: dict[str, Any] = {"name": name, "in": "query", "required": False}
    if description:
        param["description"] = description
    return {**param, "schema": {"type": "string"}}


@lru_cache(maxsize=4)
def openapi_document(server: str) -> dict[str, Any]:
    id_param = _path_id({"type": "string"})
    # ``row_id``: anything outside a stored row id's range is simply not found
    delivery_id = _path_id({"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID})
    bad_query = _json(
        "a query value malformed or out of bounds, named in errors[].field", FieldErrors
    )
    bad_body = _json("the body is not UTF-8, or nested too deep; named `(body)`", FieldErrors)
    too_large = _json("the body is larger than 4 MiB", FieldErrors)
    no_item = _json("no such item", Error)
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
            "schemas": component_schemas(),
        },
        "paths": {
            "/api/v1/items": {
                "post": _op(
                    "Ingest an approved item and fan it out",
                    "publisher",
                    {
                        "201": _json(
                            "stored; its deliveries are planned by a job after this answer "
                            "(`planning.status` pending, then running with `planned` of "
                            "`total`, then done): follow it on GET /api/v1/items/{id}",
                            Ingested,
                        ),
                        "200": _json(
                            "already ingested with the same content; nothing planned twice "
                            "(`planned` lists the deliveries written so far)",
                            Ingested,
                        ),
                        "409": _json("the id exists with different content", Error),
                        "400": bad_body,
                        "413": too_large,
                        "422": _json(
                            "invalid item (or not JSON); each bad field named", FieldErrors
                        ),
                    },
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": _ref(ItemIn, "Item")}},
                    },
                )
            },
            "/api/v1/items/{id}": {
                "get": _op(
                    "The item, its status and delivery counts per channel",
                    "viewer",
                    {"200": _json("the item", ItemPublic), "404": no_item},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/deliveries": {
                "get": _op(
                    "Every delivery of the item with attempts",
                    "viewer",
                    {"200": _json("deliveries", ItemDeliveries), "404": no_item},
                    parameters=id_param,
                )
            },
            "/api/v1/items/{id}/recall": {
                "post": _op(
                    "Stop pending deliveries and delete sent messages where possible",
                    "publisher",
                    {
                        "200": _json(
                            "what was cancelled, deleted, or cannot be recalled", Recalled
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
                                "application/json": {"schema": _ref(DeliveryPage)},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": bad_query,
                    },
                    parameters=DeliveryQuery.parameters(),
                )
            },
            "/api/v1/deliveries/{id}/retry": {
                "post": _op(
                    "Requeue a dead or failed delivery",
                    "admin",
                    {
                        "200": _json("queued", Queued),
                        "404": {
                            "description": "no such delivery (plain text when the id is no number)",
                            "content": {
                                "application/json": {"schema": _ref(Error)},
                                "text/plain": {"schema": {"type": "string"}},
                            },
                        },
                        "409": _json("not retryable (delivered, pending, or recalled)", Error),
                    },
                    parameters=delivery_id,
                )
            },
            "/api/v1/questions/unanswered": {
                "get": _op(
                    "Residents' questions the FAQ could not answer, grouped, most asked first",
                    "viewer",
                    {
                        "200": _json("the groups", UnansweredPage),
                        "422": _json("a filter that cannot be read", Error),
                    },
                    parameters=UnansweredQuery.parameters(),
                )
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": _ref(OpenAPIDocument)}},
                        }
                    },
                }
            },
            "/p/{id}": {
                "get": {
                    "summary": "The public page of an item",
                    "parameters": [
                        *id_param,
                        _page_query("lang", "zh when the item has no such language"),
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
                    "parameters": [*id_param, _page_query("region")],
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
                    "parameters": [*id_param, _page_query("lang")],
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
                    "parameters": [*id_param, _page_query("lang")],
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
                        "200": _json("ok", Health),
                        "503": _json("degraded", Health),
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
    document["paths"].update(application_doc.paths(_op, _json, _ref))
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
