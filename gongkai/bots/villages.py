"""Finding the place a resident means: "绑定 巴图塔嘎查", "巴图塔", "batuta", "150627100201".

Residents type a village's name from memory on a phone: without its suffix (巴图塔 for
巴图塔嘎查), in pinyin, with a homophone from the pinyin keyboard (巴图他). A code is exact.
Several matches are offered back as a numbered list rather than guessed.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import lazy_pinyin
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.faq.engine import normalize_question
from gongkai.storage.models import Region

MAX_CANDIDATES = 6
# Administrative suffixes, longest first: a name is also known without them.
_SUFFIXES = (
    "社区居委会",
    "村民委员会",
    "嘎查村",
    "居委会",
    "村委会",
    "办事处",
    "嘎查",
    "社区",
    "街道",
    "苏木",
    "村",
    "镇",
    "乡",
    "旗",
    "县",
    "区",
    "市",
)
_CODE = re.compile(r"^\d{6,12}$")
_MONGOLIAN_FORMAT = dict.fromkeys(map(ord, "\u180b\u180c\u180d\u180e\u180f\u200c\u200d\u202f "))


def _stem(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=4096)
def _spell(text: str) -> str:
    """Toneless pinyin without spaces: 巴图塔 and 巴图他 and "Ba Tu Ta" all give "batuta"."""
    return "".join(lazy_pinyin(text)).lower().replace(" ", "")


def _mongolian_key(text: str) -> str:
    return text.translate(_MONGOLIAN_FORMAT)


def _score(query: str, region: Region) -> int:
    """0 for no match; higher for a closer one."""
    name = normalize_question(region.name)
    stem = _stem(name)
    if query in (name, region.code):
        return 100
    if query == stem:
        return 90
    if any(_mongolian_key(v) == _mongolian_key(query) for v in (region.names or {}).values()):
        return 90
    spelled = _spell(query)
    if spelled and spelled.isascii() and spelled in (_spell(name), _spell(stem)):
        return 70
    if len(query) >= 2 and (query in name or stem in query):
        return 50
    if len(spelled) >= 4 and spelled.isascii() and _spell(stem).startswith(spelled):
        return 30
    return 0


async def find_regions(session: AsyncSession, text: str, within: str | None = None) -> list[Region]:
    """Regions matching ``text`` (inside the region ``within`` when given), best first."""
    raw = text.strip()
    query = normalize_question(raw)
    if not query:
        return []
    scope = await session.get(Region, within) if within else None
    stmt = select(Region)
    if scope is not None:
        stmt = stmt.where(col(Region.path).startswith(scope.path))
    if _CODE.match(query):
        row = (await session.exec(stmt.where(Region.code == query))).first()
        return [row] if row else []
    regions = (await session.exec(stmt)).all()
    scored = [(s, r) for r in regions if (s := _score(query, r) or _score(raw, r))]
    if not scored:
        return []
    best = max(s for s, _ in scored)
    # An exact name wins outright; otherwise every match of the best kind is a candidate.
    kept = [r for s, r in scored if s == best]
    kept.sort(key=lambda r: (-r.level, r.code))
    return kept[:MAX_CANDIDATES]


async def ancestors(session: AsyncSession, code: str | None) -> list[str]:
    """The region and its ancestors (codes), from its stored path."""
    if not code:
        return []
    region = await session.get(Region, code)
    if region is None:
        return [code]
    return [c for c in region.path.strip("/").split("/") if c]


async def display_name(session: AsyncSession, code: str, lang: str = "zh") -> str:
    region = await session.get(Region, code)
    if region is None:
        return code
    return (region.names or {}).get(lang) or region.name
