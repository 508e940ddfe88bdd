"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis over the live app).

The schema is loaded from the running app's ``GET /api/v1/openapi.json``, so what is fuzzed is
exactly what clients are told. Every documented operation is called with each role's token (and
with none), with schema-valid cases, schema-invalid ones (schemathesis's negative mode) and cases
aimed at real objects (an existing item, deliveries that are dead, failed, delivered or queued)
so the handlers are exercised past their 404. A stateful run then chains requests along the
document's OpenAPI links (list deliveries → retry the first, ingest → read → recall …), so ids
taken from real answers reach the deeper branches (a retry that is queued, a page that renders).

Checks, and why these (see ``tests/web/fuzzing.py`` for the ones left out):

- ``not_a_server_error``: no input, however malformed, may produce a 5xx;
- ``status_code_conformance``: every status answered is documented for that operation, so a
  client reading the document knows every outcome;
- ``content_type_conformance``: the answer has the documented media type (JSON, CSV, HTML, …);
- ``response_schema_conformance``: a JSON answer has the documented shape.

CI form: ``GONGKAI_FUZZ_EXAMPLES`` (default 25) examples per operation and role and a third as
many chains, derandomized (the same cases every run; a chain follows what the app answered, so
chains can differ between runs), about half a minute here. The long form is
``python bench/fuzz.py --examples 2000``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.web.fuzzing import (
    ROLES,
    Report,
    fuzz_operations,
    fuzz_stateful,
    quiet_access_log,
    seed_objects,
)

EXAMPLES = int(os.environ.get("GONGKAI_FUZZ_EXAMPLES", "25"))
SCENARIOS = max(5, EXAMPLES // 3)


async def _fuzz_role(gk: Any, redis_url: str, role: str | None) -> Report:
    anchors = await seed_objects(gk.settings, redis_url)
    base = str(gk.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{base}/api/v1/openapi.json")
    tokens = {role or "anonymous": gk.tokens[role] if role else None}
    with quiet_access_log():
        return await asyncio.to_thread(
            fuzz_operations, schema, base, tokens, examples=EXAMPLES, anchors=anchors
        )


class ServerErrors(AssertionError):
    """Only 5xx answers were found."""


def _assert_clean(report: Report) -> None:
    """Any finding fails: a server error, or an answer the document does not describe."""
    found = "\n".join(f.line() for f in report.distinct())
    summary = f"{len(report.findings)} of {report.requests} requests:\n{found}"
    assert all(f.server_error for f in report.findings), summary
    if report.findings:
        raise ServerErrors(summary)


ROLE_PARAMS = list(ROLES)


@pytest.mark.parametrize("role", [*ROLE_PARAMS, pytest.param(None, id="anonymous")])
async def test_api_conforms_to_its_document_under_fuzzing(
    gk: Any, embedded_redis_url: str, role: str | None
) -> None:
    report = await _fuzz_role(gk, embedded_redis_url, role)
    assert report.requests >= EXAMPLES
    _assert_clean(report)


@pytest.mark.parametrize("role", ROLE_PARAMS)
async def test_api_conforms_along_the_documents_links(
    gk: Any, embedded_redis_url: str, role: str
) -> None:
    """Stateful: requests chained by the document's links (list → retry, ingest → recall …)."""
    await seed_objects(gk.settings, embedded_redis_url)
    base = str(gk.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{base}/api/v1/openapi.json")
    with quiet_access_log():
        report = await asyncio.to_thread(
            fuzz_stateful, schema, base, {role: gk.tokens[role]}, scenarios=SCENARIOS
        )
    assert report.requests >= SCENARIOS
    _assert_clean(report)


# A test that the test can fail: the same fuzzer and checks against a tiny app whose one
# documented route breaks on some inputs.
_TINY_DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tiny", "version": "1"},
    "paths": {
        "/half": {
            "get": {
                "parameters": [
                    {"name": "n", "in": "query", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {
                        "description": "half of n",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"half": {"type": "integer"}},
                                    "required": ["half"],
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


async def _half(request: web.Request) -> web.Response:
    n = int(request.query["n"])  # a bad n raises: aiohttp answers 500
    if n % 4 == 2:
        return web.json_response({"half": n // 2}, status=418)  # a status not documented
    if n == 0:
        return web.Response(text="0")  # text/plain, where JSON is documented
    if n % 2:
        return web.json_response({"half": n / 2})  # a float, against the documented integer
    return web.json_response({"half": n // 2})


async def test_the_fuzzer_reports_each_kind_of_failure() -> None:
    app = web.Application()
    app.router.add_get("/half", _half)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        schema = schemathesis.openapi.from_dict(_TINY_DOC)
        base = str(server.make_url("")).rstrip("/")
        with quiet_access_log():
            report = await asyncio.to_thread(
                fuzz_operations, schema, base, {"anyone": None}, examples=25
            )
    finally:
        await server.close()
    assert report.requests >= 25
    assert report.server_errors, "a handler that raises must be reported"
    assert any(f.status == 500 and f.method == "GET" for f in report.server_errors)
    by_status: dict[int | None, set[str]] = {}
    for f in report.findings:
        by_status.setdefault(f.status, set()).update(f.checks)
    assert "Undocumented status code" in by_status.get(418, set()), by_status
    assert "Response violates schema" in by_status[200]  # a float where an integer is documented
    assert any("Content-Type" in title for title in by_status[200]), by_status
