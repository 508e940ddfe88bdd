"""``/s/{code}``: the short link an SMS (or a village group, the official account, Telegram)
hands out, redirecting to the item's page in the code's language, and counting the open.

The count is the only thing kept: no address, no browser, no time of the open. Redirects never
wait for a write: each open adds one to an in-memory tally, and a background task adds the
tally to the table every ``FLUSH_SECONDS`` in one statement (``opens = opens + n``), so a burst
of residents opening the same SMS costs one UPDATE per code, not one per resident, and any
number of web processes add to the same counters. A crash loses at most that many seconds of
counts. A HEAD (a link checker) is answered the same and not counted. A path that cannot be a
code (too long, characters outside the alphabet, control characters) is a 404 before any
lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import web

from gongkai.domain.links import is_code, page_url
from gongkai.storage.short_links import add_opens, resolve
from gongkai.storage.types import utcnow
from gongkai.web.keys import MAKER

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

FLUSH_SECONDS = 1.0
CACHE_SIZE = 10_000  # codes never change what they stand for: resolved ones are kept
NOT_FOUND = "没有找到该信息 / not found"  # as /p/{id} says it


class Opens:
    """The tally of opens not yet written, and the codes already resolved."""

    def __init__(self) -> None:
        self.pending: Counter[str] = Counter()
        self.resolved: dict[str, tuple[str, str]] = {}

    def remember(self, code: str, target: tuple[str, str]) -> None:
        if len(self.resolved) >= CACHE_SIZE:
            self.resolved.clear()
        self.resolved[code] = target


OPENS = web.AppKey("short_link_opens", Opens)


async def flush(app: web.Application) -> None:
    """Write the tally; on failure it is kept and written with the next one."""
    opens = app[OPENS]
    if not opens.pending:
        return
    counts, opens.pending = opens.pending, Counter()
    try:
        async with app[MAKER]() as session:
            await add_opens(session, counts)
            await session.commit()
    except Exception as exc:
        log.warning("could not count %d short-link opens yet (%s)", sum(counts.values()), exc)
        opens.pending.update(counts)


async def _flusher(app: web.Application) -> AsyncIterator[None]:
    app[OPENS] = Opens()

    async def loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await flush(app)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await flush(app)  # the last opens before a stop


async def _redirect(request: web.Request, *, count: bool) -> web.Response:
    code = request.match_info["code"]
    if not is_code(code):
        raise web.HTTPNotFound(text=NOT_FOUND)
    opens = request.app[OPENS]
    target = opens.resolved.get(code)
    if target is None:
        async with request.app[MAKER]() as session:
            found = await resolve(session, code)
        # an item not yet published (scheduled) is not found, as on /p/: the link names no id
        if found is None or found[2] is None or found[2] > utcnow():
            raise web.HTTPNotFound(text=NOT_FOUND)
        target = found[:2]
        opens.remember(code, target)  # once published, a code's page never moves
    if count:
        opens.pending[code] += 1
    item_id, lang = target
    # Set as written, not through HTTPFound (whose URL parsing would unquote the id's "%3A");
    # a language code may be any letters (translations: 2-8 of them), so non-ASCII is quoted.
    location = quote(page_url("", item_id, lang), safe="!#$%&'()*+,/:;=?@[]~")
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


@routes.get("/s/{code}", allow_head=False)
async def short_link(request: web.Request) -> web.Response:
    return await _redirect(request, count=True)


@routes.head("/s/{code}")
async def short_link_checked(request: web.Request) -> web.Response:
    """A link checker's or preview's HEAD (carriers and chat apps check links): the same
    answer, not counted as an open."""
    return await _redirect(request, count=False)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_flusher)
    app.add_routes(routes)
