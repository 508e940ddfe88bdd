"""The address of an item's public page, the one link every channel hands out.

SMS variables, robot messages, the WeChat article's "read more", the loudspeaker script and
the printed sheet all point at the same page, so its address is spelled here once: a link that
is quoted differently in two channels is two links to a reader's browser cache, a provider's
URL check and the variable-length limit an SMS template is approved with.
"""

from __future__ import annotations

import secrets
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


# --- short links ---------------------------------------------------------------------------
# ``/s/{code}`` stands for one item's page in one language, handed out by one channel: an SMS
# variable must fit ~35 characters whole (Aliyun) or hold no URL at all (Tencent, whose
# approved template carries ``https://host/s/`` and whose variable carries only the code), and
# counting opens per code counts them per channel. Codes are drawn at random (not sequential,
# so one code says nothing about the next) from letters and digits a reader cannot confuse
# when typing one off a phone screen (no 0/O, 1/l/I).

SHORT_PATH = "/s/"
CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 6  # 56**6 ≈ 3·10^10 codes: a county's decades of items fill a millionth of it
CODE_MAX_LENGTH = 8  # what /s/ accepts; anything longer is answered 404 without a lookup
# The channels whose messages link to the page, and so hand out short links.
LINKED_CHANNELS = ("sms", "village_group", "wechat_mp", "telegram", "loudspeaker")


def short_url(public_url: str, code: str) -> str:
    """``{public_url}/s/{code}``: the whole link an Aliyun variable carries."""
    return f"{public_url.rstrip('/')}{SHORT_PATH}{code}"


def new_code() -> str:
    """A fresh random code; the database's unique key catches the rare repeat."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_code(value: str) -> bool:
    """Could ``value`` be a code at all? Checked before any lookup, so a huge or hostile path
    costs nothing."""
    return 0 < len(value) <= CODE_MAX_LENGTH and all(c in CODE_ALPHABET for c in value)


def link_key(channel: str, lang: str) -> str:
    """How a code is filed on an item view: one per channel and language."""
    return f"{channel}:{lang}"
