"""The village committee's pages: the loudspeaker script to read aloud (``/p/{id}/script``), its
audio (``/p/{id}/script.wav``) and the bulletin-board sheet (``/p/{id}/print``).

A committee that got only an SMS, or whose robot message was cut, still finds the whole script
here; one without a good reader plays the audio. The script text is the loudspeaker channel's
own (``render_script_text``), so what is read here is what the channel sent.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from gongkai.channels.loudspeaker import ScriptUnavailable, render_script_text
from gongkai.channels.rendering import render
from gongkai.channels.spoken import estimate_read_seconds
from gongkai.channels.tts import SpeechEngine, SpeechUnavailable, audio_for, engine_from_spec
from gongkai.dispatch.planning import item_view
from gongkai.domain.links import page_url
from gongkai.web import bulletin
from gongkai.web.bulletin import Section, item_languages, load_public_item, sheet_order
from gongkai.web.keys import SETTINGS

routes = web.RouteTableDef()


def speech_engine() -> SpeechEngine | None:
    """The engine the loudspeaker channel uses (``GONGKAI_TTS_ENGINE``, espeak-ng by default);
    None when the configured one cannot be loaded, so the page still shows the script."""
    try:
        return engine_from_spec(os.environ.get("GONGKAI_TTS_ENGINE"), "wav")
    except (ValueError, TypeError, ImportError, AttributeError):
        return None


def clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


@routes.get("/p/{id}/script")
async def script_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    item = await load_public_item(request)
    view = item_view(item)
    asked = request.query.get("lang")
    engine = speech_engine()
    sections = []
    missing = []
    for lang in [asked] if asked else sheet_order(item_languages(item)):
        try:
            script = render_script_text(view, lang)
        except ScriptUnavailable as exc:
            missing.append(str(exc))
            continue
        section = Section.of(lang, settings.public_url, item.id)
        has_audio = engine is not None and engine.supports(lang)
        sections.append(
            {
                "section": section,
                "title": bulletin.text_in(item, lang, "title"),
                "paragraphs": [p.strip() for p in script.split("\n\n") if p.strip()],
                "read_time": clock(estimate_read_seconds(script, lang)),
                "audio_url": (
                    page_url("", item.id, lang, view="script.wav", pin_lang=True)
                    if has_audio
                    else None
                ),
            }
        )
    if not sections:
        raise web.HTTPNotFound(
            text="没有该语言的广播稿 / no loudspeaker script: " + "; ".join(missing)
        )
    html = render(
        "web",
        sections[0]["section"].lang,
        "script.html",
        html=True,
        item=item,
        sections=sections,
        languages=[s["section"].lang for s in sections],
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/p/{id}/script.wav")
async def script_audio(request: web.Request) -> web.FileResponse:
    settings = request.app[SETTINGS]
    item = await load_public_item(request)
    lang = request.query.get("lang", "zh")
    try:
        script = render_script_text(item_view(item), lang)
    except ScriptUnavailable as exc:
        raise web.HTTPNotFound(
            text=f"没有该语言的广播稿 / no loudspeaker script in {lang}: {exc}"
        ) from exc
    engine = speech_engine()
    script_url = page_url("", item.id, lang, view="script", pin_lang=True)
    if engine is None or not engine.supports(lang):
        name = engine.name if engine else "the configured speech engine"
        raise web.HTTPNotFound(
            text=f"该语言暂无语音，请按广播稿朗读 / no audio in {lang}: {name} has no voice "
            f"for it; read the script aloud: {script_url}"
        )
    cache_dir = Path(settings.data_dir) / "audio"
    try:
        path = await audio_for(item.id, lang, script, cache_dir, engine)
    except SpeechUnavailable as exc:
        raise web.HTTPNotFound(
            text=f"该语言暂无语音 / no audio in {lang}: {exc}; read the script: {script_url}"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise web.HTTPServiceUnavailable(
            text=f"语音合成失败 / speech synthesis failed: {exc}"
        ) from exc
    return web.FileResponse(
        path,
        headers={
            "Content-Type": engine.media_type,
            "Content-Disposition": f'inline; filename="{item.id}-{lang}.{engine.extension}"',
            "Cache-Control": "no-cache",
        },
    )


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.add_routes(bulletin.routes)
