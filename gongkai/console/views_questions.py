"""Residents' unanswered questions, grouped by their normalised text, and "add to FAQ".

Adding goes through the FAQ store's import (so the bots' live index notices the change within
seconds) and then marks every question of the group answered by the new entry.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.console.console_queries import now_local
from gongkai.console.render import needs, page, regions_named, see_other
from gongkai.console.sessions import SESSION, flash
from gongkai.domain.bounds import MAX_SUMMARY, control_problem
from gongkai.domain.catalog import DOMAINS, OTHER_DOMAIN
from gongkai.faq.format import FaqEntryData
from gongkai.faq.store import import_entries
from gongkai.storage.models import AuditEntry, FaqEntry, Question, Role
from gongkai.web.keys import MAKER, SETTINGS

routes = web.RouteTableDef()
MAX_GROUPS = 200
_KEYWORD_SPLIT = re.compile(r"[\s,，、;；]+")


@dataclass
class QuestionGroup:
    normalized: str
    count: int
    example: str
    last_asked: datetime
    regions: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


async def unanswered_groups(session: AsyncSession) -> list[QuestionGroup]:
    unanswered = Question.answered == False  # noqa: E712
    rows = (
        await session.exec(
            select(
                Question.normalized,
                func.count(),
                func.min(Question.text),
                func.max(Question.asked_at),
            )
            .where(unanswered)
            .group_by(Question.normalized)
            .order_by(func.count().desc(), func.max(Question.asked_at).desc())
            .limit(MAX_GROUPS)
        )
    ).all()
    groups = {n: QuestionGroup(n, c, example, last) for n, c, example, last in rows}
    if groups:
        places = (
            await session.exec(
                select(Question.normalized, Question.region_code, Question.language)
                .distinct()
                .where(unanswered, col(Question.normalized).in_(list(groups)))
            )
        ).all()
        for normalized, region, language in places:
            g = groups[normalized]
            if region and region not in g.regions:
                g.regions.append(region)
            if language and language not in g.languages:
                g.languages.append(language)
    return list(groups.values())


def new_entry_id(normalized: str, today: str) -> str:
    return f"q-{today}-{hashlib.sha256(normalized.encode()).hexdigest()[:8]}"


async def _render(
    request: web.Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    async with request.app[MAKER]() as session:
        groups = await unanswered_groups(session)
        regions = await regions_named(session, [r for g in groups for r in g.regions])
    return await page(
        request,
        "questions.html.j2",
        status=status,
        active="questions",
        groups=groups,
        regions=regions,
        errors=errors or {},
        values=values or {},
        domains=(*DOMAINS, OTHER_DOMAIN),
    )


@routes.get("/admin/questions")
async def questions(request: web.Request) -> web.Response:
    return await _render(request)


@routes.post("/admin/questions/faq")
@needs(Role.publisher)
async def add_to_faq(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {
        k: str(form.get(k, "")).strip()
        for k in ("normalized", "question", "keywords", "answer", "domain")
    }
    keywords = [k for k in _KEYWORD_SPLIT.split(values["keywords"]) if k]
    errors: dict[str, str] = {}
    for name, value in values.items():  # the same text rules as an item's
        problem = control_problem(value, multiline=name == "answer")
        if name != "normalized" and len(value) > MAX_SUMMARY:
            problem = f"超过 {MAX_SUMMARY} 个字符 / longer than {MAX_SUMMARY} characters"
        if problem:
            errors[name] = problem
    if not values["question"]:
        errors["question"] = "请填写问题 / the question is required"
    if not keywords:
        errors["keywords"] = "至少一个关键词（用空格或逗号分隔）/ at least one keyword"
    if not values["answer"]:
        errors["answer"] = "请填写答复 / the answer is required"
    if values["domain"] and values["domain"] not in (*DOMAINS, OTHER_DOMAIN):
        errors["domain"] = "不是试点领域之一 / not a pilot domain"
    async with request.app[MAKER]() as session:
        pending = (
            await session.exec(
                select(func.count())
                .select_from(Question)
                .where(Question.normalized == values["normalized"], Question.answered == False)  # noqa: E712
            )
        ).one()
        if not errors and not pending:
            errors["normalized"] = "这组问题已不在未解答列表中（可能已被他人处理）"
        if errors:
            return await _render(request, status=422, errors=errors, values=values)
        today = now_local(request.app[SETTINGS].tz).strftime("%Y%m%d")
        entry_id = new_entry_id(values["normalized"], today)
        n = 1
        while await session.get(FaqEntry, entry_id) is not None:
            n += 1
            entry_id = f"{new_entry_id(values['normalized'], today)}-{n}"
        entry = FaqEntryData(
            id=entry_id,
            question=values["question"],
            keywords=keywords,
            answer=values["answer"],
            domain=values["domain"] or None,
        )
        await import_entries(session, [entry], {})
        result = await session.exec(  # type: ignore[call-overload]
            update(Question)
            .where(
                col(Question.normalized) == values["normalized"], col(Question.answered).is_(False)
            )
            .values(answered=True, faq_id=entry_id)
        )
        session.add(
            AuditEntry(
                actor=request[SESSION].name,
                action="faq-add",
                detail={"faq": entry_id, "questions": result.rowcount},
            )
        )
        await session.commit()
    await flash(request, f"已加入常见问题（{entry_id}），{result.rowcount} 条提问标记为已解答。")
    return see_other("/admin/questions")
