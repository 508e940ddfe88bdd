"""The OpenAPI document is generated, and complete: every ``/api/v1/`` route of the app is in it
with the role its handler requires, nothing is in it that the app does not serve, and every JSON
body it describes is a schema generated from the model the handler builds that body with.

The fuzz tests (``test_fuzz_api.py``) prove the document true for what it describes; these prove
it describes everything, so a new route without a schema fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic.json_schema import models_json_schema

from gongkai.domain.items import ItemIn
from gongkai.web import application_doc
from gongkai.web.answers import ANSWERS, Answer
from gongkai.web.app import create_app
from gongkai.web.inputs import QueryRefused
from gongkai.web.openapi import REF, openapi_document
from gongkai.web.params import DeliveryQuery, Query, UnansweredQuery
from tests.support import settings_for

API = "/api/v1/"
METHODS = {"get", "post", "put", "patch", "delete"}


def _app(tmp_path: Path) -> web.Application:
    return create_app(settings_for(tmp_path), "unix:///nowhere")


def _routes(app: web.Application) -> dict[tuple[str, str], Any]:
    """(method, path) → handler of every route the app serves (HEAD comes with GET)."""
    return {
        (r.method.lower(), r.resource.canonical): r.handler
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    }


def undocumented(app: web.Application, document: dict[str, Any]) -> set[tuple[str, str]]:
    """The app's API routes the document leaves out."""
    return {key for key in _routes(app) if key[1].startswith(API)} - set(_operations(document))


def _document() -> dict[str, Any]:
    return openapi_document("http://127.0.0.1:8080")


def test_every_api_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    app = _app(tmp_path)
    document = _document()
    assert undocumented(app, document) == set()
    assert set(_operations(document)) - set(_routes(app)) == set(), "documented, not served"


def test_a_new_route_without_a_schema_fails(tmp_path: Path) -> None:
    app = _app(tmp_path)

    async def extra(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/api/v1/extra/{id}", extra)
    assert undocumented(app, _document()) == {("get", "/api/v1/extra/{id}")}


def test_the_documented_role_is_the_one_the_handler_requires(tmp_path: Path) -> None:
    handlers = _routes(_app(tmp_path))
    for key, op in _operations(_document()).items():
        required = getattr(handlers[key], "required_role", None)
        assert op.get("x-role") == (required.value if required else None), key
        assert ("security" in op) == (required is not None), key
        if required is not None:
            assert {"401", "403"} <= set(op["responses"]), key


def _json_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for (method, path), op in _operations(document).items():
        bodies = [("request", op.get("requestBody", {}))]
        bodies += [(status, r) for status, r in op["responses"].items()]
        for where, body in bodies:
            for media, content in body.get("content", {}).items():
                if "json" in media:
                    yield f"{method.upper()} {path} {where}", content["schema"]


ALL_ANSWERS = (*ANSWERS, *application_doc.ANSWERS)
REQUESTS = {"Item": ItemIn, **application_doc.REQUESTS}


def _generated() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in REQUESTS.items():
        schemas[name] = model.model_json_schema(ref_template=REF)
        schemas.update(schemas[name].pop("$defs", {}))
    _, answers = models_json_schema([(m, "serialization") for m in ALL_ANSWERS], ref_template=REF)
    return {**schemas, **answers["$defs"]}


def test_every_json_body_is_a_schema_generated_from_a_model() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    assert schemas == _generated(), "a schema in the document that no model generates"
    models = {m.__name__ for m in ALL_ANSWERS}
    for where, schema in _json_schemas(document):
        assert set(schema) == {"$ref"}, f"{where}: an inline schema {schema}"
        name = schema["$ref"].removeprefix("#/components/schemas/")
        expected = set(REQUESTS) if where.endswith("request") else models
        assert name in expected, f"{where}: {name} is not a model the handlers use"


def test_every_answer_model_is_used_and_closed() -> None:
    """No model is listed for the document that no operation answers with, and every one
    refuses keys it does not declare (so a handler cannot add one past the document)."""
    document = _document()
    used = {schema["$ref"].rsplit("/", 1)[1] for _, schema in _json_schemas(document)}
    bodies = {m.__name__ for m in ALL_ANSWERS}
    nested = {"DeliveryPublic", "DeliveryRecord"}  # reached through DeliveryPage, ItemDeliveries
    assert bodies - nested <= used
    for model in ALL_ANSWERS:
        assert issubclass(model, Answer)
        assert model.model_config.get("extra") == "forbid", model.__name__


QUERIES: list[tuple[str, str, type[Query]]] = [
    ("get", "/api/v1/deliveries", DeliveryQuery),
    ("get", "/api/v1/questions/unanswered", UnansweredQuery),
    ("get", "/api/v1/applications", application_doc.ApplicationListQuery),
]


@pytest.mark.parametrize(("method", "path", "query"), QUERIES, ids=[p for _, p, _ in QUERIES])
def test_documented_query_bounds_are_the_enforced_ones(
    method: str, path: str, query: type[Query]
) -> None:
    """Each documented bound is checked on both sides of its edge with the handler's parser."""
    params = _operations(_document())[(method, path)]["parameters"]
    assert [p["name"] for p in params] == list(query.model_fields)
    for p in params:
        name, schema = p["name"], p["schema"]
        if "maximum" in schema:
            query.read({name: str(schema["minimum"])})
            query.read({name: str(schema["maximum"])})
            for outside in (schema["minimum"] - 1, schema["maximum"] + 1):
                with pytest.raises(QueryRefused, match=name):
                    query.read({name: str(outside)})
        if "maxLength" in schema:
            query.read({name: "x" * schema["maxLength"]})
            with pytest.raises(QueryRefused, match=name):
                query.read({name: "x" * (schema["maxLength"] + 1)})
        if "enum" in schema:
            for value in schema["enum"]:
                query.read({name: value})
            with pytest.raises(QueryRefused, match=name):
                query.read({name: "none-of-these"})
        if "anyOf" in schema:  # a moment within the input window
            query.read({name: "1949-01-01"})
            query.read({name: "2100-12-31T23:00:00+00:00"})
            for outside in ("1948-12-31", "2101-01-01", "9999-01-01T00:00:00+00:00"):
                with pytest.raises(QueryRefused, match=name):
                    query.read({name: outside})
