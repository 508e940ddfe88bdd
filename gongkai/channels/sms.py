"""SMS through Aliyun Dysms or Tencent Cloud SMS: fill an approved template, batch the numbers.

A channel cannot send free text by SMS: the county's template is approved in advance and we
only fill its variables, each capped at a per-account length (providers.md: unconfirmed,
~35 characters on Aliyun, ~12 on some Tencent accounts). One part is one provider request with
the same variables for every number in it, so an accepted part is never sent twice: neither
provider deduplicates for us.

Account (``target.account``, from the directory): ``provider`` aliyun|tencent,
``access_key_id``/``access_key_secret`` (Tencent: or ``secret_id``/``secret_key``),
``sign_name``, ``template_code``, optional ``template_codes`` {lang: code},
``template_text`` (the approved wording, e.g. ``您好，{title}已发布，详情：{link}``; Aliyun's
``${title}`` works too) and ``template_texts`` {lang: text}, ``variable_max_len``,
``sdk_app_id`` and ``tencent_region`` (Tencent), ``requests_per_second`` (default 20),
``batch_size``, ``per_number_daily``, ``link_form`` (``url``: ``{link}`` is the whole short
link ``{public_url}/s/{code}``, Aliyun's default; ``code``: only the code, the approved
template holding ``{public_url}/s/`` before it, Tencent's default, as Tencent refuses URLs in
variables). Tencent numbers its variables: ``{1}`` is the first variable named in
``template_text``, ``{2}`` the second, and so on.

A message the provider would refuse (a variable over ``variable_max_len``, a URL in a Tencent
variable) is refused here, at planning: ``Rendered.refused`` names the variable, its length and
the limit, the delivery is stored dead with that reason, and nothing is sent.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from typing import Any

from gongkai.channels import rendering
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
from gongkai.channels.sms_exchange import aliyun_has_sent, send_aliyun, send_tencent
from gongkai.channels.sms_providers import (
    ALIYUN,
    DEFAULT_VARIABLE_MAX_LEN,
    MAX_NUMBERS,
    PROVIDERS,
    TENCENT,
    e164,
    mainland_mobile,
    mask,
)
from gongkai.domain.links import CODE_LENGTH, link_key, page_url, short_url

SINGLE_SEGMENT = 70  # characters, 【sign】 included
MULTI_SEGMENT = 67  # per segment once a message is split (the rest carries the joining header)
ELLIPSIS = "…"
_VARIABLE = re.compile(r"\$?\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Whitespace we may fold; U+202F joins Mongolian suffixes and must survive.
_FOLDABLE_SPACE = re.compile(r"[ \t\r\n\u3000]+")
# Never left dangling at the end of a cut: Mongolian joiners and vowel separator, spaces.
_NO_TRAILING = " \u202f\u180e\u200d"
DEFAULT_TIMEOUT = 30.0
# ``link_form``: the variable holds the whole short URL, or only the code after the host and
# ``/s/`` that the approved template holds (Tencent: no URLs in variables).
LINK_FORM_URL = "url"
LINK_FORM_CODE = "code"
# Stands in for the code in a preview of an item not yet published: as long as a real one.
PREVIEW_CODE = "x" * CODE_LENGTH
# What Tencent takes for a URL in a variable: a scheme, www., or a dotted host name.
_URL_LIKE = re.compile(
    r"(https?://|www\.|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:cn|com|net|org|gov|edu|info|io|cc|top)\b)",
    re.IGNORECASE,
)


# --- text --------------------------------------------------------------------------------------


def sms_length(text: str) -> int:
    """Characters as the providers bill them: UCS-2 code units (Mongolian is in the BMP)."""
    return len(text.encode("utf-16-le")) // 2


def segments(chars: int) -> int:
    return 1 if chars <= SINGLE_SEGMENT else math.ceil(chars / MULTI_SEGMENT)


def _belongs_to_previous(ch: str) -> bool:
    """Marks and selectors shape the character before them; a cut must not orphan them."""
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me")
        or "\u180b" <= ch <= "\u180d"
        or ch == "\u180f"
        or "\ufe00" <= ch <= "\ufe0f"
        or ch == "\u200d"
    )


def shorten(text: str, limit: int) -> str:
    """Fold whitespace and cut to ``limit`` characters with "…", never between a character
    and its marks, never leaving a Mongolian suffix joiner (U+202F) hanging."""
    text = _FOLDABLE_SPACE.sub(" ", text).strip()
    if sms_length(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    cut = limit - 1
    while sms_length(text[:cut]) > cut:  # astral characters count twice
        cut -= 1
    while cut > 0 and _belongs_to_previous(text[cut]):
        cut -= 1
    cut = rendering.word_start(text, cut)
    return text[:cut].rstrip(_NO_TRAILING) + ELLIPSIS


def template_variables(template_text: str) -> list[str]:
    """Variable names in order of first appearance (Tencent's {1}, {2}, … order)."""
    names: list[str] = []
    for m in _VARIABLE.finditer(template_text):
        if m.group(1) not in names:
            names.append(m.group(1))
    return names


def fill(template_text: str, values: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1), ""), template_text)


# --- render ------------------------------------------------------------------------------------


def _language(item: ItemView, target: TargetView, account: dict[str, Any], notes: list[str]) -> str:
    """The first wanted language we can really send: it needs a translation and an approved
    template of its own; Chinese otherwise (a missing language never blocks the message)."""
    codes = account.get("template_codes") or {}
    for lang in target.languages or ("zh",):
        if lang == "zh":
            return "zh"
        if not item.has_language(lang):
            notes.append(f"translation missing: {lang}")
        elif not codes.get(lang):
            notes.append(f"no {lang} template: Chinese sent")
        else:
            return lang
    return "zh"


def _template(account: dict[str, Any], lang: str, notes: list[str]) -> tuple[str, str]:
    code = (account.get("template_codes") or {}).get(lang) or account.get("template_code")
    text = (account.get("template_texts") or {}).get(lang)
    if not text and lang == "zh":
        text = account.get("template_text")
    if not text:
        text = rendering.render("sms", lang, "template")
        notes.append(
            f"sms account {account.get('name')}: no {lang} template_text, "
            "preview and segment count use the default wording"
        )
    if not code:
        notes.append(
            f"sms account {account.get('name')}: no template_code, the provider will refuse"
        )
    return str(code or ""), str(text)


def _link(item: ItemView, target: TargetView, lang: str, public_url: str, form: str) -> str:
    """The page as an SMS carries it: the short link (``url``), or only its code (``code``, for
    a template whose approved text holds ``{public_url}/s/`` itself, as Tencent requires).
    Before publishing there is no code yet: a preview stands in one of the same length."""
    channel = target.channel or "sms"  # a committee reached by SMS counts as the loudspeaker's
    code = (
        PREVIEW_CODE
        if item.short_codes is None
        else item.short_codes.get(link_key(channel, lang), "")
    )
    if not code:  # no code for this language: the page's own address (checked like any)
        return page_url(public_url, item.id, lang)
    return code if form == LINK_FORM_CODE else short_url(public_url, code)


def _variable(
    name: str,
    item: ItemView,
    target: TargetView,
    lang: str,
    public_url: str,
    limit: int,
    form: str,
    notes: list[str],
) -> str:
    if name == "link":
        return _link(item, target, lang, public_url, form)
    if name == "item_id":
        return item.id
    if name in ("title", "summary"):
        value = item.text(lang, name) or (item.text(lang, "title") if name == "summary" else "")
        return shorten(value or item.title, limit)
    if name == "region":
        return shorten(target.region_label(lang), limit)
    if name in ("issuer", "doc_number"):
        return shorten(getattr(item, name) or "", limit)
    if name == "date":
        d = item.issued_at
        return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else d.isoformat()
    notes.append(f"template variable {{{name}}} is not one Gongkai fills: sent empty")
    return ""


def link_form(account: dict[str, Any], provider: str) -> str:
    """Which form ``{link}`` takes for this account: the directory's ``link_form``, else the
    whole short URL on Aliyun and the bare code on Tencent (which refuses URLs in variables)."""
    form = str(account.get("link_form") or "")
    if form in (LINK_FORM_URL, LINK_FORM_CODE):
        return form
    return LINK_FORM_CODE if provider == TENCENT else LINK_FORM_URL


def refusal(values: dict[str, str], provider: str, limit: int, public_url: str) -> str | None:
    """Why the provider would refuse these variables, checked before anything is sent: a
    value over the account's variable limit (Aliyun isv.PARAM_LENGTH_LIMIT, Tencent
    TemplateParameterLengthLimit), or on Tencent a URL in a variable
    (ProhibitedUseUrlInTemplateParameter). None when they would pass."""
    problems: list[str] = []
    for name, value in values.items():
        length = sms_length(value)
        if length > limit:
            hint = ""
            if name == "link":
                hint = (
                    f" ({value}: shorten GONGKAI_PUBLIC_URL, raise the account's "
                    "variable_max_len if the provider allows more, or use link_form: code)"
                )
            problems.append(
                f"variable {name} is {length} characters, over the {provider} limit of "
                f"{limit}{hint}"
            )
        if provider == TENCENT and _URL_LIKE.search(value):
            problems.append(
                f"variable {name} holds a URL ({value}), which Tencent refuses in template "
                f"variables: approve a template holding {short_url(public_url, '')} before the "
                "variable and set the account's link_form: code"
            )
    return "; ".join(problems) or None


def _phones(raw: list[Any], notes: list[str]) -> list[str]:
    """Valid, distinct 11-digit numbers; one illegal number would fail a whole Aliyun batch."""
    seen: dict[str, None] = {}
    valid = 0
    for value in raw:
        mobile = mainland_mobile(str(value))
        if mobile is None:
            notes.append(f"not a mainland mobile number, left out: {mask(str(value))}")
            continue
        valid += 1
        seen.setdefault(mobile, None)
    if len(seen) < valid:
        notes.append(f"{valid - len(seen)} duplicate phone numbers: each number is sent once")
    return list(seen)


# --- the channel -------------------------------------------------------------------------------


class SmsChannel(Channel):
    name = "sms"
    title = "短信"
    quiet_hours_apply = True
    resend_when_uncertain = False

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        notes: list[str] = []
        account = target.account
        if not account:
            return Rendered(parts=[], notes=["no sms account for this target"])
        provider = str(account.get("provider") or "")
        if provider not in PROVIDERS:
            return Rendered(
                parts=[],
                notes=[f"sms account {account.get('name')}: unknown provider {provider!r}"],
            )
        phones = _phones(list(target.address.get("phones") or []), notes)
        lang = _language(item, target, account, notes)
        code, template_text = _template(account, lang, notes)
        limit = int(account.get("variable_max_len") or DEFAULT_VARIABLE_MAX_LEN[provider])
        form = link_form(account, provider)
        names = template_variables(template_text)
        values = {
            n: _variable(n, item, target, lang, public_url, limit, form, notes) for n in names
        }
        if "link" in values:
            if item.short_codes is None:
                notes.append("preview: the short link's code is drawn when the item is published")
            if form == LINK_FORM_CODE and not re.search(r"/s/\$?\{link\}", template_text):
                notes.append(
                    f"link_form is code: the approved template must hold "
                    f"{short_url(public_url, '')} right before {{link}}"
                )
        refused = refusal(values, provider, limit, public_url)
        if refused:
            notes.append(f"refused: {refused}")
        sign_name = str(account.get("sign_name") or "")
        text = f"【{sign_name}】{fill(template_text, values)}"
        chars = sms_length(text)
        count = segments(chars)
        params: dict[str, str] | list[str] = (
            values if provider == ALIYUN else [values[n] for n in names]
        )
        wire = phones if provider == ALIYUN else [e164(p) for p in phones]
        size = max(
            1, min(int(account.get("batch_size") or MAX_NUMBERS[provider]), MAX_NUMBERS[provider])
        )
        parts = [
            {
                "provider": provider,
                "phones": wire[i : i + size],
                "template_code": code,
                "params": params,
                "sign_name": sign_name,
                "lang": lang,
                **({"refused": refused} if refused else {}),
            }
            for i in range(0, len(wire), size)
        ]
        if not phones:
            notes.append("no valid phone numbers: nothing to send")
        meta = {
            "provider": provider,
            "lang": lang,
            "text": text,
            "chars": chars,
            "segments": count,
            "recipients": len(phones),
            "cost_units": count * len(phones),
            "requests": len(parts),
        }
        return Rendered(parts=parts, notes=notes, meta=meta, refused=refused)

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        """One slot of the account's request rate, then one per number: the providers' own
        per-number rules (Aliyun 50 a day per sign + template + number; Tencent the same
        content at most once in 30 s), keyed by a hash so no number sits in Redis."""
        account = target.account or {}
        provider = str(part.get("provider") or account.get("provider") or "")
        rps = account.get("requests_per_second") or 20
        limits = [RateLimit(f"{rps}/second", f"sms:{provider}:account:{account.get('name')}")]
        sign, template = part.get("sign_name", ""), part.get("template_code", "")
        daily = account.get("per_number_daily")
        content = json.dumps(part.get("params"), ensure_ascii=False, sort_keys=True)
        for phone in part.get("phones", []):
            mobile = mainland_mobile(phone) or phone
            if provider == ALIYUN:
                material = f"{sign}|{template}|{mobile}"
                limits.append(RateLimit(f"{daily or 50}/day", f"sms:aliyun:{_digest(material)}"))
                continue
            material = f"{account.get('sdk_app_id')}|{sign}|{template}|{content}|{mobile}"
            limits.append(RateLimit("1/30 seconds", f"sms:tencent:{_digest(material)}"))
            if daily:
                limits.append(RateLimit(f"{daily}/day", f"sms:tencent:day:{_digest(mobile)}"))
        return limits

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        account = ctx.target.account
        if not account:
            raise PermanentError("no sms account for this target")
        if part.get("refused"):  # planned as refused; a retry from the console lands here
            raise PermanentError(f"not sent: {part['refused']}")
        provider = part.get("provider")
        needed = ("access_key_id", "access_key_secret") if provider == ALIYUN else ("sdk_app_id",)
        missing = [k for k in needed if not account.get(k)]
        if missing:
            raise PermanentError(f"sms account {account.get('name')}: {', '.join(missing)} missing")
        tag = f"{ctx.delivery_id}-{ctx.part_index}"
        timeout = float(account.get("timeout_seconds") or DEFAULT_TIMEOUT)
        if provider == ALIYUN:
            return await send_aliyun(ctx, account, part, tag, timeout)
        if provider == TENCENT:
            return await send_tencent(ctx, account, part, tag, timeout)
        raise PermanentError(f"unknown sms provider {provider!r}")

    async def was_sent(self, part: dict[str, Any], ctx: SendContext) -> SentPart | None:
        """Aliyun lists a number's sends with our OutId (QuerySendDetails); Tencent has no such
        lookup. Found means the stopped worker's request went out: it counts as sent."""
        account = ctx.target.account or {}
        if part.get("provider") != ALIYUN or not account.get("access_key_secret"):
            return None
        tag = f"{ctx.delivery_id}-{ctx.part_index}"
        timeout = float(account.get("timeout_seconds") or DEFAULT_TIMEOUT)
        if not await aliyun_has_sent(ctx, account, part, tag, timeout):
            return None
        return SentPart(
            provider_message_id=f"outid:{tag}",
            extra={
                "provider": ALIYUN,
                "accepted": len(part.get("phones", [])),
                "note": "发送中的工作进程已停止；按 OutId 查到已发送，未重发",
            },
        )


def _digest(material: str) -> str:
    return hashlib.sha1(material.encode("utf-8")).hexdigest()[:16]


CHANNEL = SmsChannel()
