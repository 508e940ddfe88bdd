"""Every console page renders for every role, labelled for screen readers, with nothing from
outside the service."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.support import ingest, item

PAGES = [
    "/admin/",
    "/admin/items",
    "/admin/items/ejhl-2026-0113",
    "/admin/deliveries/1",
    "/admin/deliveries",
    "/admin/deadlines",
    "/admin/questions",
    "/admin/report",
]


class Controls(HTMLParser):
    """Form controls and the labels that name them."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()
        self.label_depth = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.labelled.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append({**a, "_in_label": "yes" if self.label_depth else None})
        if tag in ("script", "img", "iframe") and (a.get("src") or "").startswith(("http", "//")):
            self.external.append(a["src"] or "")
        if tag == "link" and (a.get("href") or "").startswith(("http", "//")):
            self.external.append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1


def check_accessible(page: str) -> None:
    parser = Controls()
    parser.feed(page)
    unlabelled = [
        c
        for c in parser.controls
        if not c["_in_label"] and c.get("id") not in parser.labelled and not c.get("aria-label")
    ]
    assert unlabelled == [], unlabelled
    assert parser.external == []
    assert '<html lang="zh-Hans">' in page
    assert '<a class="skip" href="#main">跳到正文</a>' in page


async def test_every_page_renders_for_every_role(site) -> None:
    await ingest(
        site.settings, site.redis_url, item(channels=["web", "sms"], regions=["150627100201"])
    )
    for role in ("viewer", "publisher", "admin"):
        console = await site.login(role)
        for path in PAGES:
            page = await console.text(path)
            check_accessible(page)
        page = await console.text("/admin/deliveries")
        assert 'href="/admin/deliveries" aria-current="page"' in page
    page = await (await site.login("publisher")).text("/admin/publish")
    check_accessible(page)
    for name in ("id", "title", "issued_at", "approved_at", "regions", "body", "tr-mn-title"):
        assert f'<label for="f-{name}">' in page
    assert 'lang="mn-Mong" class="mong"' in page  # the Mongolian inputs are marked as such


async def test_assets_are_served_by_the_service(site) -> None:
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/")
    assert '<link rel="stylesheet" href="/static/admin/admin.css">' in page
    assert '<script src="/static/admin/admin.js" defer></script>' in page
    css = await (await site.client.get("/static/admin/admin.css")).text()
    assert ":focus-visible" in css and "@media print" in css and "Noto Sans Mongolian" in css
    js = await (await site.client.get("/static/admin/admin.js")).text()
    assert "EventSource" in js
    assert not re.search(r"https?://", css + js)
    login = await (await site.browser().get("/admin/login")).text()
    check_accessible(login)
