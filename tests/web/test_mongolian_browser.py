"""In a real browser (Debian's Chromium): Mongolian runs vertically with its own font, words
stay whole at line ends, Uyghur runs right to left, and the printed sheet is A4 pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.web_items import MN, NNBSP, publish, trilingual

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 700}
# a body long enough to need several columns on a phone: the reader must scroll sideways
LONG_BODY = "\n\n".join([MN["body"], MN["summary"], MN["body"], MN["summary"], MN["body"]])


async def _open(browser: Any, url: str, **context: Any) -> Any:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    response = await page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    await page.evaluate("document.fonts.ready.then(() => true)")
    return page


async def _box(page: Any, selector: str) -> dict[str, float]:
    box = await page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


async def test_mongolian_page_is_vertical_with_the_served_font(gk, browser, artifacts_dir) -> None:
    data = trilingual()
    data["translations"]["mn"]["body"] = LONG_BODY
    item_id = await publish(gk, data)
    page = await _open(
        browser, str(gk.make_url(f"/p/{item_id}?lang=mn")), viewport=PHONE, device_scale_factor=2
    )
    await page.screenshot(path=str(artifacts_dir / "web-mn-vertical-phone.png"), full_page=True)

    assert await page.evaluate("document.documentElement.lang") == "mn-Mong"
    for selector in ("article h1", "article .summary", "article .body p"):
        mode = await page.eval_on_selector(selector, "e => getComputedStyle(e).writingMode")
        assert mode == "vertical-lr", selector
    title, summary, body = [
        await _box(page, s) for s in ("article h1", "article .summary", "article .body p")
    ]
    assert title["height"] > title["width"] and body["height"] > body["width"]
    # lines follow each other left to right: title, then summary, then body
    assert title["x"] < summary["x"] < body["x"]
    # on a phone the reader scrolls sideways, never up and down
    scroll = await page.evaluate(
        "({w: document.scrollingElement.scrollWidth, cw: document.scrollingElement.clientWidth,"
        " h: document.scrollingElement.scrollHeight, ch: document.scrollingElement.clientHeight})"
    )
    assert scroll["w"] > scroll["cw"] and scroll["h"] <= scroll["ch"]

    # the font is the one this site serves, and it is what draws the title
    assert await page.evaluate("document.fonts.check('16px \"Noto Sans Mongolian\"', 'ᠮᠣᠩᠭᠣᠯ')")
    statuses = await page.evaluate(
        "[...document.fonts].filter(f => f.family.replace(/\"/g, '') === 'Noto Sans Mongolian')"
        ".map(f => f.status)"
    )
    assert statuses == ["loaded"]
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = await cdp.send("DOM.getDocument")
    node = await cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": "h1"})
    fonts = (await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]}))["fonts"]
    mongolian = [f for f in fonts if f["familyName"] == "Noto Sans Mongolian"]
    assert mongolian and mongolian[0]["isCustomFont"], fonts


async def test_words_joined_by_u202f_never_break_across_lines(gk, browser) -> None:
    data = trilingual()
    data["translations"]["mn"]["body"] = LONG_BODY
    item_id = await publish(gk, data)
    # a short screen makes short lines, so many suffixes sit near a line end
    page = await _open(
        browser, str(gk.make_url(f"/p/{item_id}?lang=mn")), viewport={"width": 390, "height": 260}
    )
    result = await page.evaluate(
        """() => {
          const text = document.querySelector('article .body');
          const walker = document.createTreeWalker(text, NodeFilter.SHOW_TEXT);
          const columns = new Set(); let joins = 0, split = [];
          const rect = (node, i) => { const r = document.createRange();
            r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect(); };
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const s = n.data;
            for (let i = 0; i < s.length; i++) {
              if (s[i] === ' ' || s[i] === '\\n') continue;
              columns.add(Math.round(rect(n, i).left));
              if (s[i] === '\\u202f' && i > 0 && i + 1 < s.length) {
                joins++;
                const before = rect(n, i - 1), after = rect(n, i + 1);
                if (Math.abs(before.left - after.left) > 2) split.push(s.slice(i - 3, i + 4));
              }
            }
          }
          return {joins, split, columns: columns.size};
        }"""
    )
    assert result["joins"] == LONG_BODY.count(NNBSP) > 20
    assert result["columns"] > 10  # the text really wraps, many times
    assert result["split"] == []


async def test_uyghur_page_runs_right_to_left(gk, browser, artifacts_dir) -> None:
    item_id = await publish(gk, trilingual())
    page = await _open(browser, str(gk.make_url(f"/p/{item_id}?lang=ug")), viewport=PHONE)
    await page.screenshot(path=str(artifacts_dir / "web-ug-rtl-phone.png"), full_page=True)
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert await page.eval_on_selector("article h1", "e => getComputedStyle(e).direction") == "rtl"
    # the summary's accent bar is on the reading side: the right
    widths = await page.eval_on_selector(
        ".summary",
        "e => [getComputedStyle(e).borderRightWidth, getComputedStyle(e).borderLeftWidth]",
    )
    assert widths == ["4px", "0px"]
    family = await page.eval_on_selector("article h1", "e => getComputedStyle(e).fontFamily")
    assert "Noto Naskh Arabic" in family


async def test_bulletin_sheet_prints_one_a4_page_per_language(gk, browser, artifacts_dir) -> None:
    item_id = await publish(gk, trilingual())
    page = await _open(browser, str(gk.make_url(f"/p/{item_id}/print")))
    await page.emulate_media(media="print")
    # the vertical Mongolian page holds its whole text: nothing runs off the paper
    overflow = await page.eval_on_selector(
        "section[data-lang=mn]",
        "e => [e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight]",
    )
    assert overflow[0] <= overflow[1] and overflow[2] <= overflow[3]
    assert (
        await page.eval_on_selector("section[data-lang=mn]", "e => getComputedStyle(e).writingMode")
        == "vertical-lr"
    )
    pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
    (artifacts_dir / "bulletin-sheet.pdf").write_bytes(pdf)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) == 3  # mn, ug, zh
    assert {(round(float(w)), round(float(h))) for w, h in boxes} == {(595, 842)}  # A4 in points
    assert await page.evaluate("document.scripts.length") == 0
