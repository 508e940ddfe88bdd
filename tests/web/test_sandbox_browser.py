"""In a real browser (Debian's Chromium): the sandbox page of a running demo shows each channel
the way its reader sees it, under the page's own CSP, and its controls work without script."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_demo import DEMO_IDS, demo_for, demo_running, until_delivered

pytestmark = pytest.mark.browser


async def test_the_sandbox_page_shows_what_each_reader_sees(
    tmp_path, embedded_redis_url, redis, browser, artifacts_dir
) -> None:
    s = demo_for(tmp_path)
    async with demo_running(s, embedded_redis_url):
        await until_delivered(s, DEMO_IDS)
        ctx: Any = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await ctx.new_page()
        violations: list[str] = []
        page.on(
            "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
        )
        response = await page.goto(f"{s.public_url}/sandbox/", wait_until="load")
        assert response is not None and response.status == 200
        await page.evaluate("document.fonts.ready.then(() => true)")
        await page.screenshot(path=str(artifacts_dir / "sandbox-page.png"), full_page=True)

        banner = page.locator(".gk-sandbox-banner")
        assert await banner.is_visible()
        assert "nothing is sent to real providers" in await banner.inner_text()
        assert await banner.evaluate("e => e === document.body.firstElementChild")
        colour = await banner.evaluate("e => getComputedStyle(e).borderBottomColor")
        assert colour == "rgb(138, 109, 0)"  # its stylesheet loaded under the page's CSP

        # the village group: a chat bubble whose robot markdown is rendered, not shown raw
        bubble = page.locator("#village_group .bubble").first
        assert await bubble.locator("strong").count() >= 1
        assert "**" not in await bubble.inner_text()
        assert await page.locator("#village_group .wc-comment").count() >= 1  # <font color>

        for section in ("village_group", "sms", "loudspeaker"):
            await page.locator(f"#{section}").screenshot(
                path=str(artifacts_dir / f"sandbox-{section}.png")
            )

        # the SMS on a phone: signature and billed segments
        sms = page.locator("#sms .phone .sms").first
        text = await sms.inner_text()
        assert "【伊金霍洛旗政务公开】" in text and "条 / segment" in text

        # the loudspeaker: the script, and a player whose audio the page serves
        player = page.locator("#loudspeaker audio").first
        src = await player.get_attribute("src")
        assert src and src.startswith("/sandbox/media/")
        audio = await page.request.get(f"{s.public_url}{src}")
        assert audio.status == 200 and audio.headers["content-type"].startswith("audio/")
        assert await page.locator("#loudspeaker .script-text").count() >= 1

        # the official account's article in a phone frame; its Mongolian section runs vertically
        frame_element = page.locator("#wechat_mp iframe").first
        await frame_element.scroll_into_view_if_needed()
        frame = await (await frame_element.element_handle()).content_frame()
        assert frame is not None
        await frame.wait_for_selector("h1")
        mn = frame.locator('.mp-content [lang^="mn"]').first
        assert await mn.evaluate("e => getComputedStyle(e).writingMode") == "vertical-lr"
        statuses = await frame.evaluate(
            "document.fonts.ready.then(() => [...document.fonts]"
            ".filter(f => f.family.includes('Mongolian')).map(f => f.status))"
        )
        assert statuses == ["loaded"]  # the site's own Mongolian font draws it
        await frame_element.screenshot(path=str(artifacts_dir / "sandbox-wechat-article.png"))

        # Telegram: its HTML is shown with only Telegram's tags
        assert await page.locator("#telegram .tg-message b").count() >= 1
        await page.locator("#telegram").screenshot(path=str(artifacts_dir / "sandbox-telegram.png"))

        # a drill from the page itself: a plain form, no script
        row = page.locator('tr[data-provider="telegram"]')
        await row.locator("select").select_option("rate_limit")
        await row.locator("button").click()
        await page.wait_for_url("**/sandbox/#controls")
        assert "限流" in await page.locator('tr[data-provider="telegram"] .mode').inner_text()
        await page.locator("#controls").screenshot(path=str(artifacts_dir / "sandbox-controls.png"))
        await page.locator('button[name="clear"]').click()
        await page.wait_for_url("**/sandbox/#controls")
        assert "正常" in await page.locator('tr[data-provider="telegram"] .mode').inner_text()

        # a phone-sized look at the whole page
        phone = await browser.new_context(viewport={"width": 390, "height": 800})
        small = await phone.new_page()
        await small.goto(f"{s.public_url}/sandbox/#sms", wait_until="load")
        await small.screenshot(path=str(artifacts_dir / "sandbox-page-phone.png"))
        await phone.close()
        await ctx.close()
        assert violations == []
