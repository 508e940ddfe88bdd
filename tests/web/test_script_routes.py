"""The loudspeaker script page and its audio, as a village committee uses them."""

from __future__ import annotations

import html
import io
import shutil
import wave

import pytest

from gongkai.channels.loudspeaker import render_script_text
from gongkai.channels.rendering import label
from gongkai.channels.spoken import estimate_read_seconds
from gongkai.dispatch.planning import item_view
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Item
from tests.support import item
from tests.web.web_items import publish, trilingual

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


async def stored_view(gk, item_id: str):  # type: ignore[no-untyped-def]
    engine = make_engine(gk.settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return item_view(await session.get(Item, item_id))
    finally:
        await engine.dispose()


def section(page: str, lang: str) -> str:
    return page.split(f'data-lang="{lang}"', 1)[1].split("</section>", 1)[0]


async def test_script_page_shows_the_channel_script_in_each_language(gk) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.get(f"/p/{item_id}/script")
    assert r.status == 200
    page = await r.text()
    # Mongolian first, then Chinese; Uyghur has no loudspeaker templates, so no script
    assert page.index('data-lang="mn"') < page.index('data-lang="zh"')
    assert 'data-lang="ug"' not in page
    assert "<script" not in page and '<link rel="stylesheet" href="/static/print.css">' in page
    view = await stored_view(gk, item_id)
    for lang in ("zh", "mn"):
        script = render_script_text(view, lang)
        part = section(page, lang)
        for paragraph in script.split("\n\n"):
            assert html.escape(paragraph.strip(), quote=False) in part, (lang, paragraph)
        seconds = estimate_read_seconds(script, lang)
        assert f">{seconds // 60}:{seconds % 60:02d}</time>" in part
        assert label("read_time", lang) in part
    zh, mn = section(page, "zh"), section(page, "mn")
    assert f'<audio controls preload="none" src="/p/{item_id}/script.wav?lang=zh">' in zh
    assert "<audio" not in mn and label("audio_unavailable", "mn") in mn
    assert 'class="sheet-page vertical" lang="mn-Mong"' in page


async def test_script_page_for_one_language_and_for_none(gk) -> None:
    item_id = await publish(gk, trilingual())
    page = await (await gk.get(f"/p/{item_id}/script?lang=mn")).text()
    assert 'data-lang="mn"' in page and 'data-lang="zh"' not in page
    r = await gk.get(f"/p/{item_id}/script?lang=ug")
    assert r.status == 404 and "no loudspeaker templates for ug" in await r.text()
    plain = await publish(gk, item(id="zh-only"))
    r = await gk.get(f"/p/{plain}/script?lang=mn")
    assert r.status == 404 and "translation missing: mn" in await r.text()


@needs_espeak
async def test_audio_is_a_real_wav_made_once(gk) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.get(f"/p/{item_id}/script.wav")
    assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
    audio = await r.read()
    with wave.open(io.BytesIO(audio)) as w:
        seconds = w.getnframes() / w.getframerate()
    script = render_script_text(await stored_view(gk, item_id), "zh")
    assert seconds > 5  # the notice, read twice
    assert seconds < 3 * estimate_read_seconds(script, "zh")
    cached = gk.settings.data_dir / "audio" / f"{item_id}.zh.wav"
    assert cached.read_bytes() == audio
    made = cached.stat().st_mtime_ns
    again = await gk.get(f"/p/{item_id}/script.wav?lang=zh")
    assert await again.read() == audio and cached.stat().st_mtime_ns == made


async def test_no_audio_gets_a_404_that_says_why(gk) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.get(f"/p/{item_id}/script.wav?lang=mn")
    assert r.status == 404
    text = await r.text()
    assert "no audio in mn" in text and f"/p/{item_id}/script?lang=mn" in text
    r = await gk.get(f"/p/{item_id}/script.wav?lang=ug")
    assert r.status == 404 and "no loudspeaker script in ug" in await r.text()
    assert not (gk.settings.data_dir / "audio").exists() or not any(
        (gk.settings.data_dir / "audio").glob("*.mn.*")
    )


async def test_withdrawn_item_has_no_script_and_no_audio(gk) -> None:
    item_id = await publish(gk, trilingual())
    await gk.post(f"/api/v1/items/{item_id}/recall", headers=gk.auth("publisher"))
    assert (await gk.get(f"/p/{item_id}/script")).status == 410
    assert (await gk.get(f"/p/{item_id}/script.wav")).status == 410
    assert (await gk.get("/p/nothing-here/script")).status == 404
