"""The public web page (the "first platform"): ``/p/{id}`` and the Atom feed.

The page itself is rendered on request (so a recall replaces it at once); the delivery records
that the page went live, what its address is, and a short preview of what a reader sees there
in the delivery's language (for ``gongkai render --channel web --lang mn`` and the console).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gongkai.channels.base import Channel, ItemView, Rendered, SendContext, SentPart, TargetView
from gongkai.channels.rendering import render, render_markdown
from gongkai.domain.links import page_url


class WebChannel(Channel):
    name: ClassVar[str] = "web"
    title: ClassVar[str] = "公开网页"
    targetless: ClassVar[bool] = True
    can_recall: ClassVar[bool] = True

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        lang = target.languages[0] if target.languages else "zh"
        notes: list[str] = []
        missing = not item.has_language(lang)
        if missing:
            notes.append(f"translation missing: {lang}")
        # the page shows the Chinese text under the language's labels when a translation is
        # missing; the preview does the same
        text_lang = "zh" if missing else lang
        title = item.text(text_lang, "title") or item.title
        summary = item.text(text_lang, "summary") or ""
        body = item.text(text_lang, "body") or item.body
        url = page_url(public_url, item.id, lang)
        preview = render(
            "web",
            lang,
            "preview.txt",
            title=title,
            summary=summary,
            kind=item.kind,
            issuer=item.issuer,
            doc_number=item.doc_number,
            issued_at=item.issued_at,
            urgent=item.urgent,
            translation_missing=missing,
            url=url,
        )
        return Rendered(
            parts=[{"kind": "page", "url": url, "lang": lang, "text": preview}],
            notes=notes,
            meta={
                "url": url,
                "lang": lang,
                "title": title,
                "summary": summary,
                "html_chars": len(render_markdown(body)),
                "languages": ["zh", *sorted(item.translations)],
            },
        )

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        return SentPart(provider_message_id=part["url"])

    async def recall(self, provider_message_ids: list[str], ctx: SendContext) -> str:
        return "page replaced by a withdrawal notice"


CHANNEL = WebChannel()
