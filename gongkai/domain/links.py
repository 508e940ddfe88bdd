"""The address of an item's public page, the one link every channel hands out.

SMS variables, robot messages, the WeChat article's "read more", the loudspeaker script and
the printed sheet all point at the same page, so its address is spelled here once: a link that
is quoted differently in two channels is two links to a reader's browser cache, a provider's
URL check and the variable-length limit an SMS template is approved with.
"""

from __future__ import annotations

from urllib.parse import quote

# The page without ``?lang=`` is in the source language: its link carries no query, so the
# Chinese link stays as short as an SMS variable needs it to be.
SOURCE_LANGUAGE = "zh"


def page_url(
    public_url: str,
    item_id: str,
    lang: str | None = None,
    *,
    view: str = "",
    pin_lang: bool = False,
) -> str:
    """``{public_url}/p/{id}[/{view}][?lang={lang}]``.

    The id is percent-encoded with nothing kept safe: an id may hold ``:`` (and an imported one
    anything), which must not be read as a port, a path step or a query. ``view`` names a page
    under the item (``script``, ``script.wav``, ``print``). ``public_url=""`` gives the path
    alone, for links inside our own pages. ``pin_lang`` names the source language too, where
    one page lists several languages' links side by side and each should say which it is.
    """
    url = f"{public_url.rstrip('/')}/p/{quote(item_id, safe='')}"
    if view:
        url += f"/{view}"
    if lang and (pin_lang or lang != SOURCE_LANGUAGE):
        url += f"?lang={lang}"
    return url
