"""Whatever text an item holds, the feed stays well-formed XML and the pages stay escaped.

Items are written straight into the database, past the input model's validation, so that this
checks the render side on its own: a row from an older release, a migration or a hand edit
must not break ``/feed.xml`` for every reader or put markup into a page.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Item, ItemStatus

ATOM = "{http://www.w3.org/2005/Atom}"
# Written apart from the code under test: what XML 1.0 forbids (§2.2 Char).
NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
INJECTED = "<x-injected"  # a tag no template writes: if it shows, item text became markup
NASTY = [
    "\x00", "\x01\x02\x1b\x7f", "\x0b\x0c", "\r\n", "\r", "\t", "\ufffe", "\uffff", "\x85",
    "]]>", "<![CDATA[", "]]]]><![CDATA[>", "<script>alert(1)</script>", "<SCRIPT SRC=//x.cn>",
    "<x-injected onclick=alert(1)>", "</title></entry></feed>", "<?xml version='1.0'?>",
    "<!-- ", " -->", "<!DOCTYPE x [<!ENTITY e 'x'>]>", "&e;", "&amp;", "&#0;", "&", "'", '"',
    "\"'><x-injected>", "javascript:alert(1)", "[x](javascript:alert(1))", "<img src=x onerror=1>",
    "\u202e", "\u200f", "\u200e\u2067", "ئۇيغۇرچە", "ᠮᠣᠩᠭᠣᠯ\u202fᠤᠨ", "\u180e", "𝕏", "🙂",
    "\U0010fffd", "\ufeff", "低保", "\n\n", "# ", "| a |\n|---|\n| b |",
]  # fmt: skip
# Any character Python and the database can hold (lone surrogates cannot be stored as UTF-8).
ANY_CHAR = st.characters(blacklist_categories=["Cs"])
PIECE = st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=12))
TEXT = st.one_of(
    st.lists(PIECE, max_size=12).map("".join),
    st.tuples(st.sampled_from([*NASTY, "长", "ab "]), st.integers(500, 20_000)).map(
        lambda p: p[0] * p[1]
    ),  # very long
)
# Ids travel in the URL path: no "/", no braces (the router's pattern refuses them), no NUL (a
# URL holding one is refused before routing, and the item model refuses control characters),
# nothing a client would take for a dot segment. (Real ids are far tamer: [A-Za-z0-9._:-].)
ID_CHAR = st.characters(blacklist_categories=["Cs"], blacklist_characters="/{}\x00")
ITEM_ID = st.text(ID_CHAR, min_size=1, max_size=40).filter(lambda s: s.strip(".") != "")


def catalog() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.one_of(st.sampled_from(["name", "basis", "联系人"]), TEXT), TEXT, max_size=4
    )


def translations() -> st.SearchStrategy[dict[str, dict[str, str]]]:
    one = st.fixed_dictionaries({}, optional={"title": TEXT, "summary": TEXT, "body": TEXT})
    return st.dictionaries(st.sampled_from(["mn", "ug", "bo"]), one, max_size=3)


HOSTILE_ITEM = st.fixed_dictionaries(
    {
        "id": ITEM_ID,
        "title": TEXT,
        "doc_number": st.one_of(st.none(), TEXT),
        "issuer": st.one_of(st.none(), TEXT),
        "domain": TEXT,
        "summary": TEXT,
        "body": TEXT,
        "catalog": catalog(),
        "translations": translations(),
    }
)


def expected_text(value: str) -> str:
    """What an XML parser hands back for ``value`` written as character data."""
    return NOT_XML.sub("", value).replace("\r\n", "\n").replace("\r", "\n")


async def store_item(gk: Any, fields: dict[str, Any]) -> None:
    engine = make_engine(gk.settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await store(session, fields)
    finally:
        await engine.dispose()


async def store(session: Any, fields: dict[str, Any]) -> None:
    """The one hostile item, published a moment ago (it heads the feed)."""
    await session.execute(delete(Item))
    now = datetime.now(UTC)
    session.add(
        Item(
            kind="notice",
            issued_at=date(2026, 11, 20),
            approved_by="王某",
            approved_at=now - timedelta(hours=1),
            disclosure="public",
            regions=["150627"],
            channels=["web"],
            status=ItemStatus.published,
            published_at=now - timedelta(seconds=1),
            **fields,
        )
    )
    await session.commit()


def assert_page_is_escaped(page: str) -> None:
    assert "<script" not in page.lower()  # the pages have no script at all
    assert INJECTED not in page.lower()
    assert not NOT_XML.search(page)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(fields=HOSTILE_ITEM)
@example(  # the report: a title with U+0000 made /feed.xml unreadable
    fields={"id": "gk-0", "title": "停水\x00通知]]><script>alert(1)</script>", "doc_number": None,
            "issuer": "水务局\x1b", "domain": "市政服务", "summary": "\ufffe", "body": "\x00",
            "catalog": {"联系人\x00": "<x-injected>"}, "translations": {"mn": {"title": "\x00"}}}
)  # fmt: skip
async def test_no_item_text_breaks_the_feed_or_escapes_into_a_page(gk, fields) -> None:
    await store_item(gk, fields)

    r = await gk.get("/feed.xml")
    assert r.status == 200
    raw = await r.read()
    feed = ElementTree.fromstring(raw)  # raises on anything that is not well-formed XML
    assert feed.tag == f"{ATOM}feed"
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == expected_text(fields["title"])
    assert entry.findtext(f"{ATOM}summary") == expected_text(fields["summary"])
    if fields["issuer"]:
        assert entry.findtext(f"{ATOM}author/{ATOM}name") == expected_text(fields["issuer"])
    assert entry.findtext(f"{ATOM}id").endswith("/p/" + expected_text(fields["id"]))

    path = "/p/" + quote(fields["id"], safe="")
    for lang in ("", "?lang=mn", "?lang=ug", "?lang=bo"):
        r = await gk.get(path + lang)
        assert r.status == 200, (lang, await r.text())
        assert_page_is_escaped(await r.text())


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(fields=HOSTILE_ITEM)
async def test_the_print_sheet_and_the_script_page_stay_escaped(gk, fields) -> None:
    """The bulletin-board sheet and the loudspeaker script render the same texts other ways
    (fitted to A4, spoken form): fewer examples, they are slower."""
    await store_item(gk, fields)
    path = "/p/" + quote(fields["id"], safe="")
    for page in ("/print", "/script"):
        r = await gk.get(path + page)
        assert r.status == 200, (page, await r.text())
        assert_page_is_escaped(await r.text())
