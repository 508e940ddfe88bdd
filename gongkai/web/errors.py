"""The outermost middleware: a request id on every answer, and no unhandled exception answered
with aiohttp's bare 500 (or a traceback).

A request that fails unexpectedly is logged once with its request id and answered as a JSON 500
on the API (``{"error": "internal error", "request_id": …}``) or a short plain page elsewhere;
the operator finds the traceback in the log by the id the client saw. Each one is also kept in
``app[UNHANDLED]``, which the test fixtures assert empty, so a test suite that provokes one fails
even when the test itself only looked at the status.

``QueryRefused`` and ``BodyRefused`` from ``gongkai.web.inputs`` are answered here too, as
400/413/422 naming the parameter, so handlers can simply let them rise.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from gongkai.domain.items import FieldError
from gongkai.web.answers import Answer, Error, FieldErrors, answer
from gongkai.web.inputs import BodyRefused, QueryRefused

log = logging.getLogger(__name__)

REQUEST_ID = web.RequestKey("request_id", str)
UNHANDLED = web.AppKey("unhandled_errors", list)
HEADER = "X-Request-Id"
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")  # a proxy's id is kept only when harmless
MAX_KEPT = 100


def request_id(request: web.Request) -> str:
    """This request's id: the one a proxy sent, when it looks like an id, or a new one."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        given = request.headers.get(HEADER, "")
        rid = given if _GIVEN_ID.match(given) else secrets.token_hex(8)
        request[REQUEST_ID] = rid
    return str(rid)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _refusal(error: str, field: str, message: str) -> Answer:
    return FieldErrors(error=error, errors=[FieldError(field=field, message=message)])


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request)
    try:
        if "\x00" in request.path or any("\x00" in v for v in request.query.values()):
            # PostgreSQL cannot hold a NUL in text: it would fail the first query it reached
            raise QueryRefused("(url)", "含 NUL 字符 / contains a NUL character")
        return await handler(request)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except QueryRefused as exc:
        if _is_api(request):
            return answer(_refusal("invalid query", exc.field, exc.message), 400)
        return web.Response(status=400, text=f"{exc.field}: {exc.message}")
    except BodyRefused as exc:
        if _is_api(request):
            return answer(_refusal("invalid body", "(body)", exc.message), exc.status)
        return web.Response(status=exc.status, text=exc.message)
    except Exception as exc:
        log.exception("unhandled error in %s %s [request %s]", request.method, request.path, rid)
        kept = request.app.get(UNHANDLED)
        if kept is not None and len(kept) < MAX_KEPT:
            kept.append((request.method, request.path_qs, rid, repr(exc)))
        if request.writer is not None and request.writer.output_size > 0:
            raise  # part of a stream went out already: only closing the connection is left
        if _is_api(request):
            return answer(Error(error="internal error", request_id=rid), 500)
        return web.Response(
            status=500,
            text=f"服务器内部错误 / internal server error\n请求编号 / request id: {rid}\n",
        )


async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its request, streams and aiohttp's own error pages included."""
    response.headers[HEADER] = request_id(request)


def install(app: web.Application) -> None:
    app[UNHANDLED] = []
    app.middlewares.insert(0, errors)
    app.on_response_prepare.append(_stamp)
