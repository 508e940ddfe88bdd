"""WeChat's servers pushing to an official account's callback URL, as they really do.

Builds the query (``signature``; in compatible and safe mode also ``encrypt_type=aes`` and
``msg_signature``) and the body (plain XML; plain XML plus ``<Encrypt>``; ``<Encrypt>`` alone)
with wechatpy's crypto, and opens encrypted replies with it, checking their ``MsgSignature``
first. The signing here is written apart from the code under test: it hashes by hand.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient
from wechatpy.crypto import PrpCrypto, WeChatCrypto

# The official test vectors (Tencent's WXBizMsgCrypt sample, wechatpy's tests).
VECTOR_TOKEN = "spamtest"
VECTOR_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
VECTOR_APP_ID = "wx2c2769f8efd9abc2"
# Tencent's sample push: decrypts to a text message "abcdteT" from oyORnuP8q7ou2gfYjqLzSIWZf0rs.
VECTOR_TIMESTAMP = "1409735669"
VECTOR_NONCE = "1320562132"
VECTOR_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
VECTOR_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGH"
    "QHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6t"
    "EDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3y"
    "ZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl"
    "+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)

_msg_ids = itertools.count(6054768590064713728)


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(openid: str, content: str, msg_id: int | None = None, to: str = "gh_county") -> str:
    msg_id = next(_msg_ids) if msg_id is None else msg_id
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, key: str = "", created: int | None = None) -> str:
    created = int(time.time()) if created is None else created
    return (
        f"<xml><ToUserName><![CDATA[gh_county]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def voice_xml(openid: str, recognition: str | None) -> str:
    heard = f"<Recognition><![CDATA[{recognition}]]></Recognition>" if recognition else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_county]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{int(time.time())}"
        f"</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m1]]></MediaId>"
        f"<Format><![CDATA[amr]]></Format>{heard}<MsgId>{next(_msg_ids)}</MsgId></xml>"
    )


@dataclass
class Pushed:
    status: int
    body: str
    fields: dict[str, Any] | None  # the (decrypted) reply's fields, None for "success" etc.
    encrypted: bool


class WechatPush:
    """Pushes to ``/wechat/{account}`` of a running app, in ``mode`` plain/compatible/safe."""

    def __init__(
        self, client: TestClient, account: str, token: str, app_id: str,
        aes_key: str | None = None, mode: str = "plain",
    ) -> None:  # fmt: skip
        self.client = client
        self.path = f"/wechat/{account}"
        self.token = token
        self.app_id = app_id
        self.aes_key = aes_key
        self.mode = mode
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    def encrypt(self, xml: str) -> str:
        assert self.aes_key is not None
        key = WeChatCrypto(self.token, self.aes_key, self.app_id).key
        cipher = PrpCrypto(key).encrypt(xml, self.app_id)
        return cipher.decode() if isinstance(cipher, bytes) else cipher

    def build(
        self, xml: str, *, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], str]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        query = {
            "signature": sha1_sorted(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "o-in-query",
        }
        if self.mode == "plain":
            return query, xml
        encrypt = self.encrypt(xml)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sha1_sorted(self.token, timestamp, nonce, encrypt)
        if self.mode == "compatible":
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        else:
            body = f"<xml><ToUserName><![CDATA[gh_county]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"  # noqa: E501
        return query, body

    async def send_raw(self, query: dict[str, str], body: str | bytes) -> Pushed:
        resp = await self.client.post(self.path, params=query, data=body,
                                      headers={"Content-Type": "text/xml"})  # fmt: skip
        text = await resp.text()
        return self.read_reply(resp.status, text)

    async def send(self, xml: str, **kw: Any) -> Pushed:
        query, body = self.build(xml, **kw)
        return await self.send_raw(query, body)

    def read_reply(self, status: int, text: str) -> Pushed:
        if status != 200 or not text.lstrip().startswith("<xml>"):
            return Pushed(status, text, None, False)
        outer = xmltodict.parse(text)["xml"]
        if "Encrypt" not in outer:
            return Pushed(status, text, outer, False)
        assert self.crypto is not None, "an encrypted reply to a plain-mode push"
        expected = sha1_sorted(self.token, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
        assert outer["MsgSignature"] == expected, "reply MsgSignature does not verify"
        plain = self.crypto.decrypt_message(
            text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
        )
        return Pushed(status, text, xmltodict.parse(plain)["xml"], True)

    async def verify_url(self, echostr: str, *, timestamp: str | None = None,
                         bad: bool = False) -> tuple[int, str]:  # fmt: skip
        timestamp = timestamp or str(int(time.time()))
        nonce = "123456"
        sig = sha1_sorted(self.token, timestamp, nonce)
        if bad:
            sig = sig[::-1]
        resp = await self.client.get(
            self.path,
            params={"signature": sig, "timestamp": timestamp, "nonce": nonce, "echostr": echostr},
        )
        return resp.status, await resp.text()
