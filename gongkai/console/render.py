"""The console's pages: one autoescaping jinja2 environment, shared labels, the role guard.

Kept apart from the channels' environment (which renders plain text and must not escape) but
reading the same templates folder, so the console ships with the package like everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from functools import lru_cache, wraps
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.rendering import PACKAGE_TEMPLATES
from gongkai.console.sessions import SESSION, take_flashes
from gongkai.domain.catalog import KIND_LABELS
from gongkai.domain.links import page_url
from gongkai.storage.models import Region, Role
from gongkai.web.inputs import window_day
from gongkai.web.keys import SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_LABELS = {
    "planned": "已计划",
    "scheduled": "定时待发",
    "queued": "排队中",
    "sending": "发送中",
    "delivered": "已送达",
    "failed": "失败待重试",
    "dead": "失败（已放弃）",
    "cancelled": "已取消",
}
ITEM_STATUS_LABELS = {
    "scheduled": "定时发布",
    "publishing": "发布中",
    "published": "已发布",
    "recalled": "已撤回",
}
ROLE_LABELS = {"admin": "管理员", "publisher": "发布员", "viewer": "查看员"}
NAV = (
    ("dashboard", "/admin/", "概览"),
    ("items", "/admin/items", "信息条目"),
    ("publish", "/admin/publish", "发布"),
    ("deliveries", "/admin/deliveries", "投递日志"),
    ("deadlines", "/admin/deadlines", "时限督办"),
    ("questions", "/admin/questions", "群众提问"),
    ("applications", "/admin/applications", "依申请公开"),
    ("report", "/admin/report", "季度报表"),
)


def channel_title(name: str) -> str:
    try:
        return str(registry.get(name).title)
    except registry.UnknownChannel:
        return name


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(PACKAGE_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["status"] = lambda s: STATUS_LABELS.get(str(s), str(s))
    env.filters["item_status"] = lambda s: ITEM_STATUS_LABELS.get(str(s), str(s))
    env.filters["kind"] = lambda s: KIND_LABELS.get(str(s), str(s))
    env.filters["role"] = lambda s: ROLE_LABELS.get(str(s), str(s))
    env.filters["channel"] = channel_title
    env.filters["pct"] = lambda x: "—" if x is None else f"{x * 100:.1f}%"
    env.globals["STATUS_LABELS"] = STATUS_LABELS
    env.globals["NAV"] = NAV
    env.globals["Role"] = Role
    env.globals["page_url"] = page_url
    return env


def _local(tz: Any) -> Callable[[datetime | date | None], str]:
    def fmt(value: datetime | date | None, with_seconds: bool = False) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            return value.astimezone(tz).strftime(
                "%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M"
            )
        return value.isoformat()

    return fmt


async def page(
    request: web.Request, template: str, *, status: int = 200, active: str = "", **context: Any
) -> web.Response:
    me = request.get(SESSION)
    html = (
        environment()
        .get_template(f"admin/{template}")
        .render(
            me=me,
            csrf=me.csrf if me else "",
            flashes=await take_flashes(request),
            active=active,
            local=_local(request.app[SETTINGS].tz),
            **context,
        )
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


async def message_page(request: web.Request, status: int, title: str, text: str) -> web.Response:
    return await page(request, "message.html.j2", status=status, title=title, text=text)


def needs(role: Role) -> Callable[[Handler], Handler]:
    """Refuse (403, a page that says which role is needed) below ``role``."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            me = request[SESSION]
            if not me.can(role):
                return await message_page(
                    request,
                    403,
                    "没有权限",
                    f"此操作需要“{ROLE_LABELS[role.value]}”或更高的角色；您的角色是"
                    f"“{ROLE_LABELS.get(me.role, me.role)}”。",
                )
            return await handler(request)

        return checked

    return wrap


async def regions_named(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, Region]:
    """The regions to label (Chinese name and, where there is one, the Mongolian name)."""
    wanted = {c for c in codes if c}
    if not wanted:
        return {}
    rows = await session.exec(select(Region).where(col(Region.code).in_(wanted)))
    return {r.code: r for r in rows.all()}


def parse_day(value: str | None, name: str = "date") -> date | None:
    """A filter's day: None when empty or malformed (the page says it was ignored); a day
    outside the input window is refused naming ``name``, as no arithmetic may reach it."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return window_day(name, day)


def see_other(location: str) -> web.Response:
    """The redirect after a POST (so a reload does not post again); a response, not raised,
    so a cookie set on it is kept."""
    return web.Response(status=303, headers={"Location": location})
