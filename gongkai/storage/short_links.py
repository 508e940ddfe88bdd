"""The short-link table's questions: draw an item's codes, resolve one, count opens.

A code is drawn once per item, channel and language and then only read, so a re-plan (or a
restart) hands out the same link, and a web process may cache what a code resolves to. The
opens counter is the only thing that changes, by additions many redirects share (``add_opens``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.links import LINKED_CHANNELS, link_key, new_code
from gongkai.storage.models import Item, ShortLink
from gongkai.storage.types import utcnow

DRAWS = 8  # a repeat of a random code is ~1 in 10^10 per draw; eight in a row is never


class CodesExhausted(RuntimeError):
    """Every draw hit a code in use: the code space is full, which it never should be."""


async def codes_for(
    session: AsyncSession, item_id: str, keys: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """The item's codes by ``link_key(channel, lang)`` for every ``(channel, lang)`` in
    ``keys``, drawing (and adding to the session's transaction) those it has not got yet.

    A new row goes in with ``ON CONFLICT DO NOTHING``: a code already taken (by another item)
    or a key another planner drew at the same moment leaves the row out, and the next round
    reads what is there and draws again only for what is still missing.
    """
    wanted = set(keys)
    have: dict[str, str] = {}
    for _ in range(DRAWS):
        rows = (
            await session.exec(
                select(ShortLink.channel, ShortLink.lang, ShortLink.code).where(
                    ShortLink.item_id == item_id
                )
            )
        ).all()
        have = {link_key(ch, lang): code for ch, lang, code in rows}
        missing = sorted(k for k in wanted if link_key(*k) not in have)
        if not missing:
            return have
        now = utcnow()
        values = [
            {
                "code": new_code(),
                "item_id": item_id,
                "channel": ch,
                "lang": lang,
                "opens": 0,
                "created_at": now,
            }
            for ch, lang in missing
        ]
        dialect = session.get_bind().dialect.name
        maker = pg_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(maker(ShortLink).values(values).on_conflict_do_nothing())
    raise CodesExhausted(f"no free short-link code for {item_id} after {DRAWS} draws")


async def resolve(session: AsyncSession, code: str) -> tuple[str, str, datetime | None] | None:
    """The item id and language a code stands for, and when the item was (or is to be)
    published; None for an unknown code."""
    row = (
        await session.exec(
            select(ShortLink.item_id, ShortLink.lang, Item.published_at)
            .join(Item, col(Item.id) == col(ShortLink.item_id), isouter=True)
            .where(ShortLink.code == code)
        )
    ).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def add_opens(session: AsyncSession, counts: Mapping[str, int]) -> None:
    """Add each code's opens in one statement (``opens = opens + n``), so any number of web
    processes add to the same counters without reading them first."""
    if not counts:
        return
    table = ShortLink.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.code == bindparam("b_code"))
        .values(opens=table.c.opens + bindparam("b_n")),
        [{"b_code": code, "b_n": n} for code, n in counts.items()],
    )


async def opens_by_channel(session: AsyncSession, item_id: str) -> dict[str, int]:
    """How many times the item's page was opened from each channel's links (all languages)."""
    rows = (
        await session.exec(
            select(ShortLink.channel, func.sum(ShortLink.opens))
            .where(ShortLink.item_id == item_id)
            .group_by(col(ShortLink.channel))
        )
    ).all()
    return {channel: int(total or 0) for channel, total in rows}


class _Languages(Protocol):
    def languages(self) -> list[str]: ...


def linked_keys(channels: Iterable[str], item: _Languages) -> list[tuple[str, str]]:
    """Every (channel, language) an item's messages may link from: the channels that link to
    the page (``LINKED_CHANNELS``) among the item's, times the languages it can be read in."""
    return [(ch, lang) for ch in channels if ch in LINKED_CHANNELS for lang in item.languages()]
