"""Items in three languages for the web, print and script tests, published at a fixed time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.support import item

NNBSP = "\u202f"
_SUFFIX = re.compile(r" (?=(?:ᠤ|ᠤᠨ|ᠶᠢᠨ|ᠶᠢ|ᠳᠤ|ᠳᠦ|ᠡᠴᠡ|ᠢᠶᠠᠷ|ᠢᠶᠡᠷ)(?:[ ᠃]|$))")


def suffixed(text: str) -> str:
    """Join case suffixes to their word with U+202F, as a Mongolian typist does."""
    return _SUFFIX.sub(NNBSP, text)


MN = {
    "title": suffixed(
        "2026 ᠣᠨ ᠤ ᠬᠣᠲᠠ ᠰᠠᠯᠠ ᠶᠢᠨ ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ ᠳᠣᠣᠷ᠎ᠠ ᠬᠡᠮᠵᠢᠶ᠎ᠡ ᠶᠢ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠬᠤ ᠲᠤᠬᠠᠢ ᠮᠡᠳᠡᠭᠳᠡᠯ"
    ),
    "summary": suffixed(
        "ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ ᠳᠣᠣᠷ᠎ᠠ ᠬᠡᠮᠵᠢᠶ᠎ᠡ ᠨᠢᠭᠡ ᠬᠥᠮᠥᠨ ᠳᠦ ᠰᠠᠷ᠎ᠠ ᠳᠤ 60 ᠶᠤᠸᠠᠨ ᠢᠶᠠᠷ ᠨᠡᠮᠡᠭᠳᠡᠨ᠎ᠡ᠃"
    ),
    "body": suffixed(
        "ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠠᠷᠠᠳ ᠤᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠭᠠᠵᠠᠷ ᠤᠨ ᠵᠥᠪᠰᠢᠶᠡᠷᠡᠯ ᠢᠶᠡᠷ 2026 ᠣᠨ ᠤ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ 1 ᠡᠴᠡ "
        "ᠡᠬᠢᠯᠡᠨ ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ ᠳᠣᠣᠷ᠎ᠠ ᠬᠡᠮᠵᠢᠶ᠎ᠡ ᠶᠢ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠤᠨ᠎ᠠ᠃"
    ),
}
UG = {
    "title": "2026-يىلى شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمىنى تەڭشەش توغرىسىدا ئۇقتۇرۇش",
    "summary": "شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمى ھەر بىر ئادەمگە ئايدا 60 يۈەن ئۆستۈرۈلىدۇ.",
    "body": "ھەرقايسى بازارلىق خەلق ھۆكۈمەتلىرى:\n\n2026-يىلى 12-ئاينىڭ 1-كۈنىدىن باشلاپ، "
    "شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمى ھەر بىر ئادەمگە ئايدا 60 يۈەن ئۆستۈرۈلىدۇ.",
}
PUBLISHED_AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Inner Mongolia


def trilingual(**overrides: Any) -> dict[str, Any]:
    return item(translations={"mn": dict(MN), "ug": dict(UG)}, **overrides)


async def publish(gk, data: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    """Ingest through the API, then pin ``published_at`` so pages are the same every day."""
    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Item

    r = await gk.post("/api/v1/items", json=data, headers=gk.auth("publisher"))
    assert r.status == 201, await r.text()
    engine = make_engine(gk.settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            row = await session.get(Item, data["id"])
            row.published_at = PUBLISHED_AT
            session.add(row)
            await session.commit()
    finally:
        await engine.dispose()
    return data["id"]
