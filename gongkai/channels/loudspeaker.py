"""The village loudspeaker (大喇叭): a script the committee reads aloud or plays.

Residents hear a notice once, outdoors, often elderly: so the script says numbers as words,
keeps sentences short, reads the notice twice and ends with whom to ask. It reaches the
committee through its WeCom group robot (the script as markdown, then an audio file) or, for a
committee without a robot, as an SMS through the sms channel. The robot budget (20 a minute)
is shared with the village_group channel by using the same rate-limit key.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import aiohttp

from gongkai.channels import registry
from gongkai.channels.base import (
    Channel,
    ItemView,
    PermanentError,
    RateLimit,
    Rendered,
    SendContext,
    SentPart,
    TargetView,
)
from gongkai.channels.rendering import has_templates, render, split_to_fit, utf8_len
from gongkai.channels.spoken import (
    estimate_read_seconds,
    number_words,
    spoken_phone,
    spoken_sentences,
    to_spoken,
)
from gongkai.channels.tts import SpeechUnavailable, audio_for, engine_from_spec
from gongkai.channels.village_group import ROBOT_RATE, call_robot, post_to_robot, robot_limit_key
from gongkai.domain.links import page_url

MARKDOWN_LIMIT = 4096  # bytes, WeCom robot markdown
READ_BUDGET_SECONDS = 75  # one reading of the body; read twice, a notice stays under ~3 minutes
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=60)
CONTINUED = "（续）\n"
_CONTINUED = {"mn": "(ᠦᠷᠭᠦᠯᠵᠢᠯᠡᠯ)\n"}


_ADDRESSEES = re.compile(
    r"各[^。！？；：，、]{0,40}(?:政府|部门|单位|委员会|办事处|机关)(?:、[^。！？；：，]{1,30})*："
)


class ScriptUnavailable(LookupError):
    """No script in this language: the translation or the templates are missing."""


def _strip_end(text: str) -> str:
    return text.strip().rstrip("。！？；：.!?᠃᠉ ")


def _title(item: ItemView, lang: str) -> str:
    title = item.text(lang, "title") or ""
    if lang == "zh":
        return _strip_end(to_spoken(title).replace("\n", "，"))
    return _strip_end(" ".join(spoken_sentences(title, lang)))


def _body(item: ItemView, lang: str, title: str) -> tuple[list[str], bool]:
    """The sentences to read, and whether only the summary is read (the body is too long)."""
    body = item.text(lang, "body") or ""
    summary = item.text(lang, "summary") or ""
    sentences = spoken_sentences(body, lang)
    # a body often opens with its own title as a heading (it was just announced) and with
    # the addressees of an official letter (各苏木镇人民政府：), which villagers need not hear
    while sentences and (_strip_end(sentences[0]) == title or _ADDRESSEES.fullmatch(sentences[0])):
        sentences.pop(0)
    if sentences and estimate_read_seconds("\n".join(sentences), lang) <= READ_BUDGET_SECONDS:
        return sentences, False
    if summary:
        return spoken_sentences(summary, lang), bool(sentences)
    kept: list[str] = []
    for s in sentences:  # no summary: the opening sentences that fit
        if kept and estimate_read_seconds("\n".join([*kept, s]), lang) > READ_BUDGET_SECONDS:
            break
        kept.append(s)
    return kept, len(kept) < len(sentences)


def _ask(item: ItemView, lang: str) -> str:
    """Whom to ask: the responsible body (catalog subject), else the issuer. Another
    language names them only when translated; its template has a local fallback."""
    if lang != "zh":
        translated = item.translations.get(lang, {})
        return str(translated.get("subject") or translated.get("issuer") or "").strip()
    name = str(item.catalog.get("subject") or item.issuer or "")
    return _strip_end(to_spoken(name))


def _hotline(item: ItemView, hotline: str | None, lang: str) -> str:
    number = str(hotline or item.catalog.get("hotline") or item.catalog.get("phone") or "")
    if not number:
        return ""
    return spoken_phone(number) if lang == "zh" else number


def render_script_text(item: ItemView, lang: str = "zh", *, hotline: str | None = None) -> str:
    """The loudspeaker script in ``lang``, for the channel and for ``/p/{id}/script``.

    Raises ScriptUnavailable when the item has no ``lang`` translation or the language has no
    loudspeaker templates (a Chinese template around Mongolian sentences would be wrong).
    """
    if lang != "zh" and not item.has_language(lang):
        raise ScriptUnavailable(f"translation missing: {lang}")
    if not has_templates("loudspeaker", lang):
        raise ScriptUnavailable(f"no loudspeaker templates for {lang}")
    title = _title(item, lang)
    sentences, summary_only = _body(item, lang, title)
    return render(
        "loudspeaker",
        lang,
        "script.txt",
        title=title,
        sentences=sentences,
        summary_only=summary_only,
        urgent=item.urgent,
        ask=_ask(item, lang),
        hotline=_hotline(item, hotline, lang),
    )


def duration_words(seconds: int) -> str:
    """约一分三十秒: rounded up to five seconds, as a person would say it."""
    seconds = max(5, -(-seconds // 5) * 5)
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{number_words(str(rest))}秒"
    said = "两" if minutes == 2 else number_words(str(minutes))
    return f"{said}分" + (f"{number_words(str(rest))}秒" if rest else "钟")


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def _engine_spec(target: TargetView) -> str:
    return str(target.options.get("tts_engine") or os.environ.get("GONGKAI_TTS_ENGINE") or "")


class LoudspeakerChannel(Channel):
    name = "loudspeaker"
    title = "村广播（大喇叭）广播稿"
    quiet_hours_apply = True

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        notes: list[str] = []
        parts: list[dict[str, Any]] = []
        seconds: dict[str, int] = {}
        languages = list(dict.fromkeys([*(target.languages or ()), "zh"]))
        audio_format = str(target.options.get("audio_format") or "wav")
        robot = bool(target.address.get("robot_key"))
        engine = None
        if robot:
            try:
                engine = engine_from_spec(_engine_spec(target), audio_format)
            except (ImportError, AttributeError, TypeError, ValueError) as exc:
                notes.append(f"speech engine unavailable, script sent without audio: {exc}")
        for lang in languages:
            try:
                script = render_script_text(item, lang, hotline=target.options.get("hotline"))
            except ScriptUnavailable as exc:
                notes.append(str(exc))
                continue
            seconds[lang] = estimate_read_seconds(script, lang)
            if not robot:
                continue
            has_audio = engine is not None and engine.supports(lang)
            if engine is not None and not has_audio:
                notes.append(f"audio unavailable: {lang}")
            parts += self._messages(item, target, lang, script, seconds[lang], has_audio)
            if has_audio:
                parts.append(
                    {
                        "kind": "audio",
                        "lang": lang,
                        "format": audio_format,
                        "text": script,
                        "filename": f"{_file_stem(item.id)}-{lang}.{audio_format}",
                    }
                )
        if target.address.get("phones"):
            parts += self._sms_parts(item, target, public_url, notes)
        if not robot and not target.address.get("phones"):
            notes.append("target has neither robot_key nor phones: nothing to send")
        meta = {
            "read_seconds": seconds,
            "parts": len(parts),
            "bytes": [utf8_len(p["content"]) for p in parts if p["kind"] == "markdown"],
        }
        # SMS alone, and the provider would refuse it: refused at planning like the sms channel's
        # (beside a robot the script still goes out; the SMS part then fails with the reason).
        refused = None if robot else next((p["refused"] for p in parts if p.get("refused")), None)
        return Rendered(parts=parts, notes=notes, meta=meta, refused=refused)

    def _messages(
        self,
        item: ItemView,
        target: TargetView,
        lang: str,
        script: str,
        seconds: int,
        has_audio: bool,
    ) -> list[dict[str, Any]]:
        content = render(
            "loudspeaker",
            lang,
            "message.md",
            region=target.region_label(lang),
            written_title=(item.text(lang, "title") or item.title).strip(),
            duration=duration_words(seconds),
            clock=_clock(seconds),
            has_audio=has_audio,
            script=script,
        )
        mark = _CONTINUED.get(lang, CONTINUED)
        pieces = split_to_fit(content, MARKDOWN_LIMIT, reserve=utf8_len(mark))
        return [
            {"kind": "markdown", "lang": lang, "content": piece if i == 0 else mark + piece}
            for i, piece in enumerate(pieces)
        ]

    def _sms_parts(
        self, item: ItemView, target: TargetView, public_url: str, notes: list[str]
    ) -> list[dict[str, Any]]:
        """A committee without a robot gets the notice by SMS through the sms channel, whose
        approved template and provider limits apply; the part also records the script page."""
        try:
            sms = registry.get("sms")
        except registry.UnknownChannel:
            notes.append("sms channel not available: committee phones not reached")
            return []
        rendered = sms.render(item, target, public_url)
        notes += [f"sms: {n}" for n in rendered.notes]
        script_url = page_url(public_url, item.id, view="script")
        # flat, so the planner seals "phones" as it does for the sms channel's own parts
        return [{**p, "kind": "sms_link", "url": script_url} for p in rendered.parts]

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        if part.get("kind") == "sms_link":
            return registry.get("sms").rate_limits(target, _sms_part(part))
        key = target.address.get("robot_key")
        return [RateLimit(ROBOT_RATE, robot_limit_key(str(key)))] if key else []

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        kind = part.get("kind")
        if kind == "sms_link":
            sent = await registry.get("sms").send(_sms_part(part), ctx)
            sent.extra.setdefault("script_url", part.get("url"))
            return sent
        key = ctx.target.address.get("robot_key")
        if not key:
            raise PermanentError("target has no robot_key", deactivate_target=True)
        base = ctx.settings.wecom_api_base
        if kind == "markdown":
            payload = {"msgtype": "markdown", "markdown": {"content": part["content"]}}
            return await post_to_robot(ctx.http, base, str(key), payload)
        if kind == "audio":
            return await self._send_audio(part, ctx, str(key))
        raise PermanentError(f"unknown loudspeaker part kind {kind!r}")

    async def _send_audio(self, part: dict[str, Any], ctx: SendContext, key: str) -> SentPart:
        engine = engine_from_spec(_engine_spec(ctx.target), str(part.get("format") or "wav"))
        cache_dir = Path(ctx.settings.data_dir) / "audio"
        try:
            path = await audio_for(ctx.item_id, part["lang"], part["text"], cache_dir, engine)
        except SpeechUnavailable as exc:
            # the script itself went out; a missing voice is not worth failing the delivery
            return SentPart(extra={"skipped": f"audio unavailable: {part['lang']}: {exc}"})
        except (OSError, RuntimeError) as exc:
            raise PermanentError(f"speech synthesis failed: {exc}") from exc
        audio = await asyncio.to_thread(path.read_bytes)
        base = ctx.settings.wecom_api_base
        media_id = await upload_media(
            ctx.http, base, key, audio, part["filename"], engine.media_type
        )
        payload = {"msgtype": "file", "file": {"media_id": media_id}}
        sent = await post_to_robot(ctx.http, base, key, payload)
        sent.extra.update(media_id=media_id, audio_bytes=len(audio))
        return sent


def _sms_part(part: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in part.items() if k not in ("kind", "url")}


def _file_stem(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)[:80] or "item"


async def upload_media(
    http: aiohttp.ClientSession,
    api_base: str,
    robot_key: str,
    data: bytes,
    filename: str,
    content_type: str,
) -> str:
    """Upload a file for a robot (type=file: WeCom's voice type takes AMR only) → media_id.

    The form field is ``media`` with filename, filelength and content-type, as WeCom asks.
    """
    with aiohttp.MultipartWriter("form-data") as form:
        section = form.append(data, {"Content-Type": content_type})
        section.set_content_disposition(
            "form-data", name="media", filename=filename, filelength=str(len(data))
        )
    url = f"{api_base.rstrip('/')}/cgi-bin/webhook/upload_media"
    answer = await call_robot(
        http.post(
            url, params={"key": robot_key, "type": "file"}, data=form, timeout=UPLOAD_TIMEOUT
        ),
        "WeCom upload",
    )
    if not answer.get("media_id") or answer.get("errcode"):
        raise PermanentError(f"WeCom upload gave no media_id: {answer.get('errmsg', '')}")
    return str(answer["media_id"])


CHANNEL = LoudspeakerChannel()
