"""The public web page (the "first platform"): ``/p/{id}`` and the Atom feed.

The page itself is rendered on request (so a recall replaces it at once); the delivery records
that the page went live and what its address is.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gongkai.channels.base import Channel, ItemView, Rendered, SendContext, SentPart, TargetView
from gongkai.channels.rendering import render_markdown


class WebChannel(Channel):
    name: ClassVar[str] = "web"
    title: ClassVar[str] = "公开网页"
    targetless: ClassVar[bool] = True
    can_recall: ClassVar[bool] = True

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        url = f"{public_url.rstrip('/')}/p/{item.id}"
        html = render_markdown(item.body)
        return Rendered(
            parts=[{"kind": "page", "url": url}],
            meta={"url": url, "html_chars": len(html),
                  "languages": ["zh", *sorted(item.translations)]},
        )

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        return SentPart(provider_message_id=part["url"])

    async def recall(self, provider_message_ids: list[str], ctx: SendContext) -> str:
        return "page replaced by a withdrawal notice"


CHANNEL = WebChannel()
