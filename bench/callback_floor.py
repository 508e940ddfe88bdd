"""The floor of the stack for a safe-mode WeChat callback, started by ``bench/callback.py``:

    python bench/callback_floor.py PORT FAQ_FILE TOKEN ENCODING_AES_KEY APP_ID

An aiohttp handler that does only what every safe-mode reply needs, with Gongkai's own pieces:
the query signature, the body through defusedxml, wechatpy's ``msg_signature`` check and AES
decryption, the message read by wechatpy, the FAQ answer from Gongkai's engine, the reply XML
and its encryption. No duplicate or replay guard, no rate limit, no resident, no question log,
no Redis, no database. Whatever Gongkai does per message beyond this is what its guarantees
cost; a figure for Gongkai above this one is not possible on aiohttp, wechatpy and CPython.
It runs on uvloop when uvloop is installed, as ``gongkai serve`` does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from gongkai.bots.phrases import say
from gongkai.bots.wechat_messages import (
    AccountCrypto,
    accept_tree,
    check_signed,
    fit,
    read_message,
    reply_nonce,
    text_reply,
)
from gongkai.faq.engine import FaqIndex, normalize_question, parse_faq_yaml

COUNTY = "150627"  # bench/callback.py's county and its two divisions below it
PARENTS: dict[str, str | None] = {
    COUNTY: None,
    "150627101": COUNTY,
    "150627101201": "150627101",
}


def make_app(faq_file: str, token: str, aes_key: str, app_id: str) -> web.Application:
    entries, synonyms = parse_faq_yaml(Path(faq_file).read_text("utf-8"))
    index = FaqIndex(sorted(entries, key=lambda e: e.id), synonyms, PARENTS)
    crypto = AccountCrypto(token, aes_key, app_id)

    async def receive(request: web.Request) -> web.Response:
        q, now = request.query, time.time()
        check_signed(token, q.get("timestamp"), q.get("nonce"), q.get("signature"), now=now)
        _, tree = accept_tree(await request.read())
        envelope = {"Encrypt": (tree.findtext("Encrypt") or "").strip()}
        plain = crypto.decrypt_message(envelope, q.get("msg_signature"), q["timestamp"], q["nonce"])
        message = read_message(*accept_tree(plain))
        text = (getattr(message, "content", "") or "").strip()
        if normalize_question(text):
            answer = fit(index.ask(text, COUNTY, "zh", hotline="12345").answer)
        else:
            answer = say("zh", "help")
        xml = text_reply(message.source or "", message.target or "", answer, now)
        sealed = crypto.encrypt_message(xml, reply_nonce(q["nonce"]), str(int(now)))
        return web.Response(text=str(sealed), content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat/{account}", receive)
    return app


def main() -> None:
    port, faq_file, token, aes_key, app_id = sys.argv[1:6]
    try:
        from uvloop import new_event_loop
    except ImportError:
        new_event_loop = asyncio.new_event_loop
    web.run_app(  # runs the loop until SIGTERM, then closes it
        make_app(faq_file, token, aes_key, app_id),
        host="127.0.0.1",
        port=int(port),
        print=None,
        access_log=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
