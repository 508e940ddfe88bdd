"""WeChat's push protocol on our side: our limits in front of wechatpy, which speaks the rest.

wechatpy checks signatures, opens and seals the AES envelope, parses pushes into typed messages
and renders passive replies. What it does not do is distrust its input: it parses with
xmltodict on plain expat, which reads a DTD's entity declarations and expands them. So nothing
reaches it before our own limits have passed: a fresh timestamp (replays are refused, see
`replay_ttl`), a size cap, then defusedxml with DTDs forbidden (no entity expansion, so a
"billion laughs" fails at its first line) and a depth cap. Only the text defusedxml accepted is
handed on, and the typed fields are read once, here, so a malformed one is a 400 naming it
rather than an error in the handler.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.events import EVENT_TYPES, BaseEvent, register_event
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.fields import BaseField, StringField
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage
from wechatpy.parser import parse_message
from wechatpy.utils import check_signature

from gongkai.channels.rendering import xml_safe

MAX_BODY = 64 * 1024  # WeChat's pushes are a few hundred bytes; a long text message ~3 KB
TIME_WINDOW = 300  # seconds a signed request stays valid: older ones are replays
# Web processes on different machines may disagree about the time by this much; a request is
# remembered until the slowest of them would refuse its timestamp.
CLOCK_SLACK = 60
MAX_DEPTH = 6  # <xml><PublishEventInfo><article_detail><item><article_url> is the deepest
REPLY_MAX_BYTES = 2000  # WeChat truncates (or drops) longer passive text replies


class _Envelope(PrpCrypto):
    """wechatpy's AES envelope, with the 16 random characters it starts with drawn at once
    (wechatpy draws them one by one from ``SystemRandom``)."""

    def get_random_string(self) -> str:
        return secrets.token_urlsafe(12)


class AccountCrypto(WeChatCrypto):
    """wechatpy's message crypto for one account, keeping one AES envelope for every message
    instead of building one (and its cipher) for each message both ways."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        super().__init__(token, encoding_aes_key, app_id)
        self._envelope = _Envelope(self.key)

    def _reused(self, key: bytes) -> PrpCrypto:
        return self._envelope

    def encrypt_message(self, msg: Any, nonce: str, timestamp: str | None = None) -> str:
        return str(self._encrypt_message(msg, nonce, timestamp, self._reused))

    def decrypt_message(self, msg: Any, signature: str, timestamp: str, nonce: str) -> str:
        return str(self._decrypt_message(msg, signature, timestamp, nonce, self._reused))


class Refused(Exception):
    """A request we will not process; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@register_event("publishjobfinish")
class PublishJobFinishEvent(BaseEvent):
    """WeChat's verdict on a submitted article. wechatpy 1.8 predates the freepublish API and
    would parse it as an unknown message, losing the verdict; registering it is wechatpy's own
    way to teach it an event."""

    event = "publishjobfinish"
    info = BaseField("PublishEventInfo", {})


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


def accept(data: bytes | str) -> str:
    """The document as text once defusedxml has found it harmless; 4xx for anything else."""
    return accept_tree(data)[0]


def accept_tree(data: bytes | str) -> tuple[str, Element]:
    """`accept`, and the tree defusedxml read (so that nothing parses the document twice)."""
    if len(data) > MAX_BODY:
        raise Refused(413, "body too large")
    try:
        # Decoded here, so that defusedxml and xmltodict read the very same characters.
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, RecursionError) as exc:
        raise Refused(400, f"unacceptable XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise Refused(400, "not a WeChat message")
    below = [(root, 0)]
    while below:  # not recursive: a 64 KB body can nest thousands deep
        element, depth = below.pop()
        if depth > MAX_DEPTH:
            raise Refused(400, "XML nested too deeply")
        below.extend((child, depth + 1) for child in element)
    return text, root


def read_message(accepted: str, tree: Element | None = None) -> BaseMessage:
    """wechatpy's typed message for a document `accept` let through (``tree``: the tree it
    read, so that the document is not parsed again).

    Every declared field is read once here: wechatpy converts lazily (``int("x")`` would
    raise later, inside the handler) and leaves a field that arrived as nested XML a dict.
    """
    try:
        message = parse_message(accepted) if tree is None else _typed(_as_read(tree))
    except (KeyError, AttributeError, TypeError, ExpatError):  # no MsgType, or not a mapping
        raise Refused(400, "not a WeChat message") from None
    data = message._data
    for name, field in type(message)._fields.items():  # the declared fields, as render() uses
        raw = data.get(field.name)
        if isinstance(field, StringField) or raw is None or isinstance(raw, dict | list):
            # wechatpy hands these out as they are: text stays text, markup stays a dict
            if isinstance(field, StringField) and isinstance(raw, dict | list):
                raise Refused(400, f"{field.name} is not text")
            continue
        try:  # a value wechatpy converts (a number, a time): convert it now, once
            getattr(message, name)
        except (ValueError, TypeError, OverflowError, OSError):
            raise Refused(400, f"{field.name} is malformed") from None
    return message


def _as_read(element: Element) -> Any:
    """An element as xmltodict (wechatpy's parser) reads it: text stripped (None when empty),
    children as a mapping (repeated ones as a list), attributes as "@name"."""
    text = "".join([element.text or "", *(child.tail or "" for child in element)]).strip()
    if not len(element) and not element.attrib:
        return text or None
    out: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in element:
        value = _as_read(child)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    if text:
        out["#text"] = text
    return out


def _typed(message: dict[str, Any]) -> BaseMessage:
    """wechatpy's message class for the fields, chosen as `wechatpy.parser.parse_message`
    chooses it (events by their lower-cased name; a subscribe through a QR code or a product
    scan is an event of its own, its scene id without the "qrscene_" prefix)."""
    kind = message["MsgType"].lower()
    if kind != "event" and not kind.startswith("device_"):
        return MESSAGE_TYPES.get(kind, UnknownMessage)(message)
    event = message["Event"].lower() if "Event" in message else None
    if kind.startswith("device_"):
        event = kind if event is None else f"device_{event}"
    key = message.get("EventKey")
    if event == "subscribe" and key:
        if key.startswith(("scanbarcode|", "scanimage|")):
            event = message["Event"] = "subscribe_scan_product"
        elif key.startswith("qrscene_"):
            event = message["Event"] = "subscribe_scan"
            message["EventKey"] = key[len("qrscene_") :]
    return EVENT_TYPES.get(event, UnknownMessage)(message)


def _cdata_safe(text: str) -> str:
    """``text`` as wechatpy may put it inside CDATA: it does not escape "]]>", so that is split
    across two sections, and characters XML cannot carry are dropped (a reply holding one
    would be rejected whole)."""
    return xml_safe(text).replace("]]>", "]]]]><![CDATA[>")


def fit(text: str, limit: int = REPLY_MAX_BYTES) -> str:
    """Cut to WeChat's passive-reply size, between characters, with a visible ellipsis."""
    if len(text.encode("utf-8")) <= limit:
        return text
    out = text.encode("utf-8")[: limit - len("……".encode())].decode("utf-8", "ignore")
    return out.rstrip() + "……"


# wechatpy's TextReply renders exactly this (fields in its order); built here as a string,
# since the reply object and its field machinery cost as much as the rest of the reply.
_TEXT_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
    "<FromUserName><![CDATA[{source}]]></FromUserName>\n"
    "<ToUserName><![CDATA[{target}]]></ToUserName>\n<CreateTime>{time}</CreateTime>\n</xml>"
)


def text_reply(to_user: str, from_user: str, content: str, now: float) -> str:
    """A passive text reply (ToUserName is the resident, FromUserName our account)."""
    return _TEXT_REPLY.format(
        content=_cdata_safe(fit(content)),
        source=_cdata_safe(from_user),
        target=_cdata_safe(to_user),
        time=int(now),
    )


def reply_nonce(nonce: str) -> str:
    """The nonce for the encrypted reply: the request's, as WeChat's own samples do, unless it
    is anything but plain letters and digits (it goes into the envelope's CDATA unescaped)."""
    if nonce.isascii() and nonce.isalnum() and len(nonce) <= 64:
        return nonce
    return secrets.token_hex(8)


def dedup_key(app_id: str, message: BaseMessage) -> str:
    """Messages are told apart by MsgId, events by sender, creation time and type. A job's
    verdict (a mass send's MsgID, an article's publish_id) is part of its key too: WeChat pushes
    the verdicts of two jobs finished in the same second from the same sender, and both count."""
    if not isinstance(message, BaseEvent) and message.id:
        return f"wechat:{app_id}:msg:{message.id}"
    event: Any = getattr(message, "event", "")
    job = ""
    if isinstance(message, PublishJobFinishEvent):
        info = message.info
        job = str(info.get("publish_id") or "") if isinstance(info, dict) else ""
    elif event == "masssendjobfinish":
        job = str(getattr(message, "id", "") or "")
    key = f"wechat:{app_id}:event:{message.source or ''}:{message.time or ''}:{event}"
    return f"{key}:{job[:64]}" if job else key


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
