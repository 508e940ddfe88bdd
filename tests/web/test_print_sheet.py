"""The bulletin-board sheet: A4 and script-free, languages in the region's order (Mongolian
first by default), a QR code per page that leads to that language's web page."""

from __future__ import annotations

import re

import pytest

from tests.support import item
from tests.web.web_items import MN, publish, trilingual

QR_BYTE_CAPACITY_M = [14, 26, 42, 62, 84, 106, 122, 152, 180, 213]  # versions 1-10, level M


def sections(sheet: str) -> list[str]:
    return re.findall(r'<section class="sheet-page[^"]*"[^>]* data-lang="([a-z]+)"', sheet)


def qr_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """The symbol's size in modules (with the quiet zone) and its dark modules."""
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))  # type: ignore[union-attr]
    dark: set[tuple[int, int]] = set()
    for x0, y0, x1, y1 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", svg):
        dark |= {(x, y) for x in range(int(x0), int(x1)) for y in range(int(y0), int(y1))}
    return size, dark


def section_qr(sheet: str, lang: str) -> tuple[str, str]:
    """The QR SVG of one language's page and the address printed under it."""
    part = sheet.split(f'data-lang="{lang}"', 1)[1].split("</section>", 1)[0]
    svg = re.search(r"<svg.*?</svg>", part, re.S).group(0)  # type: ignore[union-attr]
    url = re.search(r'<span class="url" dir="ltr">([^<]+)</span>', part).group(1)  # type: ignore[union-attr]
    return svg, url


async def test_sheet_is_a4_in_large_type_without_script(gk) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.get(f"/p/{item_id}/print")
    assert r.status == 200 and r.content_type == "text/html"
    sheet = await r.text()
    assert '<link rel="stylesheet" href="/static/print.css">' in sheet
    assert "<script" not in sheet and "onload" not in sheet
    css = await (await gk.get("/static/print.css")).text()
    assert re.search(r"@page\s*{\s*size:\s*A4", css)
    assert "font: 16pt/1.6" in css and "h1 { font-size: 26pt" in css
    assert "break-after: page" in css  # one language per sheet of paper


async def test_default_order_puts_mongolian_first_and_chinese_last(gk) -> None:
    item_id = await publish(gk, trilingual())
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    assert sections(sheet) == ["mn", "ug", "zh"]
    assert '<html lang="mn-Mong">' in sheet
    assert 'class="sheet-page vertical" lang="mn-Mong" dir="ltr"' in sheet
    assert 'class="sheet-page" lang="ug-Arab" dir="rtl"' in sheet
    assert MN["title"] in sheet and "信息公示栏" in sheet and "ᠮᠡᠳᠡᠭᠡ ᠢᠯᠡ ᠪᠣᠯᠭᠠᠬᠤ ᠰᠠᠮᠪᠠᠷ᠎ᠠ" in sheet


async def test_region_decides_languages_and_order(gk) -> None:
    item_id = await publish(gk, trilingual())
    batu = await (await gk.get(f"/p/{item_id}/print?region=150627100201")).text()
    assert sections(batu) == ["mn", "zh"]  # the gachaa lists [mn, zh]
    subur = await (await gk.get(f"/p/{item_id}/print?region=150627100202")).text()
    assert sections(subur) == ["zh"]  # no languages listed up its tree: Chinese
    r = await gk.get(f"/p/{item_id}/print?region=999999")
    assert r.status == 404 and "unknown region: 999999" in await r.text()


async def test_region_language_without_translation_falls_back_to_chinese(gk) -> None:
    item_id = await publish(gk, item())
    sheet = await (await gk.get(f"/p/{item_id}/print?region=150627100201")).text()
    assert sections(sheet) == ["zh"]
    assert "自2026年12月1日起，城乡低保标准每人每月提高60元。" in sheet


async def test_each_page_has_a_qr_code_of_the_right_size_for_its_address(gk) -> None:
    item_id = await publish(gk, trilingual())
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    for lang, expected in (
        ("zh", f"http://gongkai.test/p/{item_id}"),
        ("mn", f"http://gongkai.test/p/{item_id}?lang=mn"),
    ):
        svg, url = section_qr(sheet, lang)
        assert url == expected
        size, dark = qr_modules(svg)
        n = size - 8  # a four-module quiet zone on each side
        version = (n - 17) // 4
        assert n == 4 * version + 17
        # the smallest version that holds the address at error-correction level M
        assert version == 1 + next(
            i for i, cap in enumerate(QR_BYTE_CAPACITY_M) if cap >= len(expected)
        )
        for cx, cy in ((4, 4), (4 + n - 7, 4), (4, 4 + n - 7)):  # the three finder patterns
            ring = {
                (cx + i, cy + j) for i in range(7) for j in range(7) if i in (0, 6) or j in (0, 6)
            }
            centre = {(cx + i, cy + j) for i in range(2, 5) for j in range(2, 5)}
            assert ring <= dark and centre <= dark
            assert not ({(cx + 1, cy + j) for j in range(1, 6)} & dark)


async def test_qr_codes_decode_to_the_page_addresses(gk) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    item_id = await publish(gk, trilingual())
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    for lang in ("mn", "ug", "zh"):
        svg, url = section_qr(sheet, lang)
        size, dark = qr_modules(svg)
        scale = 6
        pixels = bytearray(
            0 if (x // scale, y // scale) in dark else 255
            for y in range(size * scale)
            for x in range(size * scale)
        )
        image = memoryview(pixels).cast("B", (size * scale, size * scale))
        decoded = [b.text for b in zxingcpp.read_barcodes(image)]
        assert decoded == [url], lang


async def test_redacted_item_prints_only_the_redacted_text(gk) -> None:
    data = item(
        disclosure="public_redacted",
        body="正文含内部意见：某某村另行安排。",
        redacted_body="自2026年12月1日起，城乡低保标准每人每月提高60元。",
    )
    item_id = await publish(gk, data)
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    assert "内部意见" not in sheet and "每人每月提高60元" in sheet


async def test_long_vertical_text_is_left_to_the_web_page(gk) -> None:
    data = trilingual()
    data["translations"]["mn"]["body"] = "\n\n".join([MN["body"]] * 8)  # > 600 characters
    item_id = await publish(gk, data)
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    mn = sheet.split('data-lang="mn"', 1)[1].split("</section>", 1)[0]
    assert MN["summary"] in mn and MN["body"] not in mn
    assert "ᠪᠦᠷᠢᠨ ᠡᠬᠡ\u202fᠶᠢ ᠦᠵᠡᠬᠦ" in mn  # "read the full text" next to the QR code
    zh = sheet.split('data-lang="zh"', 1)[1]
    assert "自2026年12月1日起" in zh  # horizontal text flows onto more pages instead


async def test_withdrawn_and_unpublished_items_print_nothing(gk) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.post(f"/api/v1/items/{item_id}/recall", headers=gk.auth("publisher"))
    assert r.status == 200
    r = await gk.get(f"/p/{item_id}/print")
    assert r.status == 410 and "withdrawn" in await r.text()
    later = item(id="later-1", publish_at="2099-01-01T08:00:00+08:00")
    await gk.post("/api/v1/items", json=later, headers=gk.auth("publisher"))
    assert (await gk.get("/p/later-1/print")).status == 404
