"""Body images of a WeChat article, uploaded at send time.

WeChat shows only images it hosts: each one goes through ``media/uploadimg`` (JPEG or PNG, at
most 1 MB) and the article points at the URL WeChat returns. Planning cannot do this (it must
not call providers), so the stored article carries marked links (``wechat_article``) and the
send step swaps each for the uploaded image. An image that cannot be fetched or is refused stays
a plain link, and the delivery says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from gongkai.channels.base import PermanentError, TransientError
from gongkai.channels.wechat_api import WechatApi, image_type
from gongkai.channels.wechat_article import IMAGE_MARK

UPLOAD_MAX = 1024 * 1024  # media/uploadimg: JPEG or PNG up to 1 MB
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=15)
_MARKED = re.compile(rf'<a href="([^"]*)" {IMAGE_MARK}="1">\[([^\]]*)\]</a>')


async def with_body_images(
    api: WechatApi, http: aiohttp.ClientSession, content: str, allowed: Callable[[str], bool]
) -> tuple[str, list[str]]:
    """The content with each marked image uploaded and shown; notes for those left as links."""
    notes: list[str] = []
    uploaded: dict[str, str | None] = {}
    for src in dict.fromkeys(m.group(1) for m in _MARKED.finditer(content)):
        try:
            image = await _fetch(http, src.replace("&amp;", "&"), allowed)
            uploaded[src] = await api.upload_body_image(image)
        except (TransientError, PermanentError) as exc:
            uploaded[src] = None
            notes.append(f"body image left as a link ({src}): {exc}")

    def swap(m: re.Match[str]) -> str:
        src, alt = m.group(1), m.group(2)
        url = uploaded.get(src)
        return f'<img src="{url}" alt="{alt}">' if url else f'<a href="{src}">[{alt}]</a>'

    return _MARKED.sub(swap, content), notes


async def _fetch(http: aiohttp.ClientSession, url: str, allowed: Callable[[str], bool]) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise PermanentError("not an http(s) address")
    if not allowed(urlsplit(url).hostname or ""):
        raise PermanentError("its host is not in GONGKAI_IMAGE_HOSTS")
    try:
        async with http.get(url, timeout=FETCH_TIMEOUT) as resp:
            if resp.status >= 400:
                raise PermanentError(f"HTTP {resp.status}")
            image = await resp.content.read(UPLOAD_MAX + 1)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise TransientError(f"unreachable: {type(exc).__name__}") from exc
    if len(image) > UPLOAD_MAX:
        raise PermanentError("over WeChat's 1 MB for body images")
    if image_type(image) not in ("image/png", "image/jpeg"):
        raise PermanentError("WeChat takes only JPEG and PNG body images")
    return image
