"""The FAQ in the database: import and export of the YAML file, and the live answering index.

Editors change the FAQ while the bots run (CLI import, admin console), in another process as
often as not. Every process therefore checks a cheap fingerprint of the FAQ tables at most
every two seconds and rebuilds its `FaqIndex` when it changed: edits go live without a restart
and without a message bus. Any change bumps ``updated_at`` of the entries it affects (a synonym
change touches every entry, since it changes how all of them match), so the fingerprint is just
the entry count and the newest ``updated_at``.
"""

from __future__ import annotations

import asyncio
import gc
import html
import logging
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.faq.engine import FaqEntryData, FaqIndex, dump_faq_yaml, parse_faq_yaml
from gongkai.storage.models import FaqEntry, FaqSynonym, Region
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)
CHECK_EVERY = 2.0  # seconds between fingerprint checks, per process
_FIELDS = ("question", "keywords", "answer", "answers", "domain", "regions")


@dataclass
class FaqImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    synonyms_changed: bool = False

    def summary(self) -> str:
        return (
            f"entries: {len(self.added)} added, {len(self.updated)} updated, "
            f"{self.unchanged} unchanged, {len(self.removed)} removed; synonyms "
            + ("changed" if self.synonyms_changed else "unchanged")
        )


def entry_data(row: FaqEntry) -> FaqEntryData:
    return FaqEntryData(
        id=row.id,
        question=row.question,
        keywords=list(row.keywords or []),
        answer=row.answer,
        answers=dict(row.answers or {}),
        domain=row.domain,
        regions=list(row.regions or []),
    )


async def import_entries(
    session: AsyncSession,
    entries: list[FaqEntryData],
    synonyms: dict[str, list[str]],
    *,
    prune: bool = False,
) -> FaqImportReport:
    """Upsert entries and synonyms; with ``prune`` also delete what the input does not hold."""
    report = FaqImportReport()
    now = utcnow()
    existing = {row.id: row for row in (await session.exec(select(FaqEntry))).all()}
    old_synonyms = {
        s.word: list(s.synonyms) for s in (await session.exec(select(FaqSynonym))).all()
    }
    new_synonyms = dict(old_synonyms) if not prune else {}
    new_synonyms.update({head: list(words) for head, words in synonyms.items()})
    if new_synonyms != old_synonyms:
        report.synonyms_changed = True
        await session.exec(delete(FaqSynonym))  # type: ignore[call-overload]
        session.add_all(FaqSynonym(word=w, synonyms=s) for w, s in new_synonyms.items())
    for data in entries:
        values = {name: getattr(data, name) for name in _FIELDS}
        row = existing.pop(data.id, None)
        if row is None:
            session.add(FaqEntry(id=data.id, updated_at=now, **values))
            report.added.append(data.id)
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            session.add(row)
            report.updated.append(data.id)
        else:
            report.unchanged += 1
            if report.synonyms_changed:  # matching changed: make every index rebuild
                row.updated_at = now
                session.add(row)
    for entry_id, row in existing.items():
        if prune:
            await session.delete(row)
            report.removed.append(entry_id)
        elif report.synonyms_changed:
            row.updated_at = now
            session.add(row)
    await session.commit()
    return report


async def import_faq_text(
    session: AsyncSession, text: str, *, prune: bool = False
) -> FaqImportReport:
    """Import a FAQ file (contract format); raises `FaqFormatError` naming entry and field."""
    entries, synonyms = parse_faq_yaml(text)
    return await import_entries(session, entries, synonyms, prune=prune)


async def load_faq(session: AsyncSession) -> tuple[list[FaqEntryData], dict[str, list[str]]]:
    rows = (await session.exec(select(FaqEntry).order_by(col(FaqEntry.id)))).all()
    synonyms = (await session.exec(select(FaqSynonym).order_by(col(FaqSynonym.word)))).all()
    return [entry_data(r) for r in rows], {s.word: list(s.synonyms) for s in synonyms}


async def export_faq_text(session: AsyncSession) -> str:
    entries, synonyms = await load_faq(session)
    return dump_faq_yaml(entries, synonyms)


# --- the live index ---------------------------------------------------------------------------


@dataclass
class _Live:
    fingerprint: tuple[Any, ...] | None = None
    index: FaqIndex | None = None
    checked_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_live: weakref.WeakKeyDictionary[Any, _Live] = weakref.WeakKeyDictionary()


async def _fingerprint(session: AsyncSession, with_regions: bool) -> tuple[Any, ...]:
    count, newest = (
        await session.exec(select(func.count(col(FaqEntry.id)), func.max(FaqEntry.updated_at)))
    ).one()
    regions = 0
    if with_regions:
        regions = (await session.exec(select(func.count(col(Region.code))))).one()
    return count, str(newest), regions


async def _build(
    session: AsyncSession, region_parents: dict[str, str | None] | None, hotline: str
) -> FaqIndex:
    entries, synonyms = await load_faq(session)
    if region_parents is None:
        rows = (await session.exec(select(Region.code, Region.parent_code))).all()
        region_parents = {code: parent for code, parent in rows}
    index = FaqIndex(entries, synonyms, region_parents, hotline=hotline)
    # jieba and the tables take from a few ms to a second: never on the event loop.
    await asyncio.to_thread(index.warm_up)
    if gc.get_freeze_count():
        # A long-running process froze its start-up heap (`settle_heap`); the index is as
        # long-lived (until the FAQ changes), and a full collection walking its hundreds of
        # thousands of objects would stall every request for tens of milliseconds.
        gc.freeze()
    return index


async def get_index(
    app_or_maker: web.Application | async_sessionmaker[AsyncSession],
    region_parents: dict[str, str | None] | None = None,
    *,
    hotline: str | None = None,
) -> FaqIndex:
    """The current FAQ index, rebuilt when the FAQ changed (checked at most every 2 s).

    ``region_parents`` maps a division code to its parent; by default the region table. While
    one caller rebuilds, the others keep answering from the previous index.
    """
    if isinstance(app_or_maker, web.Application):
        from gongkai.web.keys import MAKER, SETTINGS

        maker = app_or_maker[MAKER]
        hotline = hotline or app_or_maker[SETTINGS].hotline
    else:
        maker = app_or_maker
    hotline = hotline or "12345"
    live = _live.get(maker)
    if live is None:
        live = _live[maker] = _Live()
    now = time.monotonic()
    if live.index is not None and now - live.checked_at < CHECK_EVERY:
        return live.index
    if live.index is not None and live.lock.locked():
        return live.index
    async with live.lock:
        if live.index is not None and time.monotonic() - live.checked_at < CHECK_EVERY:
            return live.index
        async with maker() as session:
            fingerprint = (*await _fingerprint(session, region_parents is None), hotline)
            if live.index is None or fingerprint != live.fingerprint:
                live.index = await _build(session, region_parents, hotline)
                live.fingerprint = fingerprint
        live.checked_at = time.monotonic()
        return live.index


class IndexKeeper:
    """The FAQ index for code that answers residents: never built or checked inside a request.

    `get_index` checks the FAQ's fingerprint in the caller's time, and the caller that finds
    it changed waits for the rebuild. The bots answer bursts of questions, so a keeper does
    that in a task of its own every `CHECK_EVERY` seconds, and `index()` hands out whichever
    index is current: an immutable `FaqIndex`, replaced whole when the FAQ changed. Only the
    very first question of a process waits, for the first index.
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession], hotline: str) -> None:
        self.maker = maker
        self.hotline = hotline
        self._task: asyncio.Task[None] | None = None

    async def index(self) -> FaqIndex:
        live = _live.get(self.maker)
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="faq index")
        if live is not None and live.index is not None:
            return live.index
        return await get_index(self.maker, hotline=self.hotline)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            try:
                await get_index(self.maker, hotline=self.hotline)
            except Exception:  # the database away: keep answering from the index there is
                log.warning("could not check the FAQ for changes", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- WeChat's built-in auto-reply rules -------------------------------------------------------

_LINK = re.compile(r"<a\s[^>]*href=[\"']([^\"']+)[\"'][^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    """WeChat rule texts may hold <a href> links; our answers are plain text on every platform."""
    text = _LINK.sub(lambda m: f"{m.group(2).strip()} {m.group(1).strip()}".strip(), text)
    return html.unescape(_TAG.sub("", text)).strip()


def entries_from_autoreply(data: dict[str, Any]) -> tuple[list[FaqEntryData], list[str]]:
    """FAQ entries from ``get_current_autoreply_info``'s keyword rules, and notes on what could
    not be carried over (images, voice and video replies have no place in a text FAQ)."""
    notes: list[str] = []
    entries: list[FaqEntryData] = []
    rules = ((data.get("keyword_autoreply_info") or {}).get("list")) or []
    for n, rule in enumerate(rules, 1):
        name = " ".join(str(rule.get("rule_name") or f"rule {n}").split())
        keywords = [
            str(k.get("content")).strip()
            for k in rule.get("keyword_list_info") or []
            if k.get("type", "text") == "text" and str(k.get("content") or "").strip()
        ]
        texts: list[str] = []
        for reply in rule.get("reply_list_info") or []:
            kind = reply.get("type")
            if kind == "text" and reply.get("content"):
                texts.append(_plain(str(reply["content"])))
            elif kind == "news":
                for article in (reply.get("news_info") or {}).get("list") or []:
                    title, url = article.get("title") or "", article.get("content_url") or ""
                    texts.append(f"{title} {url}".strip())
            else:
                notes.append(f"{name}: a {kind} reply cannot be imported (text only)")
        texts = [t for t in texts if t]
        if not keywords or not texts:
            notes.append(f"{name}: skipped ({'no keywords' if not keywords else 'no text reply'})")
            continue
        if rule.get("reply_mode") == "random_one":
            texts = texts[:1]
        entry_id = f"wechat-{name}"[:128]
        entries.append(FaqEntryData(entry_id, name, keywords, "\n\n".join(texts)))
    return entries, notes
