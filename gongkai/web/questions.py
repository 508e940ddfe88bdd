"""``GET /api/v1/questions/unanswered``: what residents ask that the FAQ cannot answer yet.

Questions are grouped by their normalised text ("低保咋办？？" and "低保 咋办!" are one
group) with how often, where and when they were last asked, most asked first: the list an
editor works through to grow the FAQ (domain.md rule 9: use data to learn what people need).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Question, Region, Role
from gongkai.web.answers import RegionCount, UnansweredGroup, UnansweredPage, answer
from gongkai.web.auth import require
from gongkai.web.keys import MAKER, SETTINGS
from gongkai.web.params import UnansweredQuery

routes = web.RouteTableDef()


async def unanswered_groups(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    region: str | None = None,
    platform: str | None = None,
    limit: int = 100,
) -> list[UnansweredGroup]:
    """Unanswered questions grouped by normalised text, most asked first."""
    conditions: list[Any] = [Question.answered == False, Question.normalized != ""]  # noqa: E712
    if since is not None:
        conditions.append(col(Question.asked_at) >= since)
    if platform:
        conditions.append(Question.platform == platform)
    if region:
        row = await session.get(Region, region)
        prefix = row.path if row else f"/{region}/"
        inside = select(Region.code).where(col(Region.path).startswith(prefix))
        conditions.append(col(Question.region_code).in_(inside))
    count = func.count(col(Question.id))
    last = func.max(Question.asked_at)
    groups = (
        await session.exec(
            select(Question.normalized, count, last)
            .where(*conditions)
            .group_by(col(Question.normalized))
            .order_by(count.desc(), last.desc())
            .limit(limit)
        )
    ).all()
    if not groups:
        return []
    keys = [g[0] for g in groups]
    details = (
        await session.exec(
            select(Question.normalized, Question.region_code, Question.language, Question.text)
            .where(*conditions, col(Question.normalized).in_(keys))
            .order_by(col(Question.asked_at).desc())
        )
    ).all()
    regions: dict[str, dict[str, int]] = defaultdict(dict)
    languages: dict[str, set[str]] = defaultdict(set)
    example: dict[str, str] = {}
    for normalized, code, lang, text in details:
        by_region = regions[normalized]
        by_region[code or ""] = by_region.get(code or "", 0) + 1
        languages[normalized].add(lang)
        example.setdefault(normalized, text)  # the latest wording
    return [
        UnansweredGroup(
            normalized=normalized,
            example=example.get(normalized, normalized),
            count=n,
            regions=[
                RegionCount(code=code or None, count=k)
                for code, k in sorted(regions[normalized].items(), key=lambda kv: -kv[1])
            ],
            languages=sorted(languages[normalized]),
            last_asked=_iso(latest),
        )
        for normalized, n, latest in groups
    ]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@routes.get("/api/v1/questions/unanswered")
@require(Role.viewer)
async def unanswered(request: web.Request) -> web.Response:
    """Unanswered questions grouped by normalised text: ?since=ISO&region=CODE&limit=N."""
    # a date or local time without an offset is read on the county's own clock
    query = UnansweredQuery.read(request.query, request.app[SETTINGS].tz)
    async with request.app[MAKER]() as session:
        groups = await unanswered_groups(
            session,
            since=query.since,
            region=query.region,
            platform=query.platform,
            limit=query.limit,
        )
    return answer(UnansweredPage(groups=groups, total=sum(g.count for g in groups)))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
