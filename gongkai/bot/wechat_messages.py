"""WeChat's push protocol on our side: signatures, untrusted XML in, passive-reply XML out.

Everything that reaches the callback is hostile until its signature checks out (wechatpy's
check, inside our timestamp window), and the body is parsed only after that, by defusedxml
with DTDs forbidden (no entity expansion, so a "billion laughs" fails at its first line),
under a size cap and a depth cap.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from gongkai.channels.rendering import xml_safe

MAX_BODY = 64 * 1024  # WeChat's pushes are a few hundred bytes; a long text message ~3 KB
TIME_WINDOW = 300  # seconds a signed request stays valid: older ones are replays
# Web processes on different machines may disagree about the time by this much; a request is
# remembered until the slowest of them would refuse its timestamp.
CLOCK_SLACK = 60
MAX_DEPTH = 6  # <xml><PublishEventInfo><article_detail><item><article_url> is the deepest
REPLY_MAX_BYTES = 2000  # WeChat truncates (or drops) longer passive text replies


class Refused(Exception):
    """A request we will not process; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_signed(
    token: str, timestamp: str | None, nonce: str | None, given: str | None, *, now: float
) -> None:
    """Refuse (403) a stale timestamp or a signature that does not match; parse nothing.

    The window is ours: wechatpy would accept a correctly signed request from any year.
    """
    if not timestamp or not nonce or not given:
        raise Refused(403, "signature, timestamp and nonce are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Refused(403, "timestamp is not a number") from None
    if abs(now - sent) > TIME_WINDOW:
        raise Refused(403, "stale timestamp")
    try:
        check_signature(token, given.lower(), timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad signature") from None


def _to_dict(element: Element, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise Refused(400, "XML nested too deeply")
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _to_dict(child, depth + 1)
        if child.tag in out:  # repeated tags (several <item>) become a list
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """A WeChat XML document as a dict of its fields; 400 for anything else."""
    if len(data) > MAX_BODY:
        raise Refused(413, "body too large")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, RecursionError) as exc:
        raise Refused(400, f"unacceptable XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise Refused(400, "not a WeChat message")
    fields = _to_dict(root)
    if not isinstance(fields, dict):
        raise Refused(400, "empty WeChat message")
    return fields


def cdata(text: str) -> str:
    """``text`` inside CDATA, safely: "]]>" is split across two sections, and characters XML
    cannot carry are dropped."""
    clean = xml_safe(text)  # a reply holding one would be rejected whole
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def fit(text: str, limit: int = REPLY_MAX_BYTES) -> str:
    """Cut to WeChat's passive-reply size, between characters, with a visible ellipsis."""
    if len(text.encode("utf-8")) <= limit:
        return text
    out = text.encode("utf-8")[: limit - len("……".encode())].decode("utf-8", "ignore")
    return out.rstrip() + "……"


def text_reply(to_user: str, from_user: str, content: str, now: int | None = None) -> str:
    """A passive text reply (ToUserName is the resident, FromUserName our account)."""
    created = int(time.time()) if now is None else now
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(fit(content))}</Content></xml>"
    )


def reply_nonce(nonce: str) -> str:
    """The nonce for the encrypted reply: the request's, as WeChat's own samples do, unless it
    is anything but plain letters and digits (it goes into the envelope's CDATA unescaped)."""
    if nonce.isascii() and nonce.isalnum() and len(nonce) <= 64:
        return nonce
    return secrets.token_hex(8)


def dedup_key(app_id: str, fields: dict[str, Any]) -> str:
    """Messages are told apart by MsgId, events by sender and creation time."""
    msg_id = fields.get("MsgId")
    if msg_id:
        return f"wechat:{app_id}:msg:{msg_id}"
    return (
        f"wechat:{app_id}:event:{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}"
        f":{fields.get('Event', '')}"
    )


def request_key(app_id: str, timestamp: str, nonce: str, given: str) -> str:
    """The signed request itself: replaying it verbatim reproduces all three.

    Hashed, because the nonce is as long as the sender likes and keys live for minutes.
    """
    digest = hashlib.sha256(f"{timestamp}\n{nonce}\n{given.lower()}".encode()).hexdigest()
    return f"wechat:{app_id}:request:{digest}"


def replay_ttl(timestamp: str, now: float) -> int:
    """Seconds a request signed at ``timestamp`` (already checked) can still pass
    `check_signed` on any of our processes: remembering it that long leaves no gap for a replay,
    and no longer keeps Redis small (~300 s for a fresh request, at most 660)."""
    return max(1, int(int(timestamp) + TIME_WINDOW - now) + CLOCK_SLACK)
