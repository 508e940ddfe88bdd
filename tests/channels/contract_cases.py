"""The table of the channel contract: one row per channel (used by test_channel_contract.py).

A row says how to run the channel's fake provider and point Settings at it, where the
directory puts a target (巴图塔嘎查, languages [mn, zh]), how to make the provider fail for a
moment and for good, how to count what it received and which documented limits a part keeps.
A channel without a provider says in its row why the failure promises cannot apply to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from gongkai.sandbox import aliyun_sms, telegram_api, wechat_api, wecom_robot
from tests.support import item

VILLAGE = "150627100201"
ITEM_ID = "n1"  # short: the SMS link variable must stay within Aliyun's 35 characters
PUBLIC = "http://gongkai.test"  # settings_for's public_url
APP_ID, APP_SECRET = "wx0000000000000001", "s3cret-app"
BOT_TOKEN, CHAT = "123456:TESTTOKEN", -1001234567890
SIGN = "伊金霍洛旗政务公开"
NNBSP = "\u202f"  # joins a Mongolian suffix; no cut may fall on it

# --- the long bilingual item ---------------------------------------------------------------

ZH_TITLE = "关于调整2026年度全旗城乡居民最低生活保障标准和特困人员基本生活标准有关事项的通知"
ZH_SENTENCES = (
    "为进一步保障困难群众基本生活，根据自治区有关规定，结合我旗实际，现将有关事项通知如下。",
    "城市居民最低生活保障标准由每人每月840元提高到900元，农村牧区由每人每年9600元提高到10320元。",
    "各苏木镇要认真做好政策宣传和解释工作，确保调整后的标准及时足额发放到户，不得截留挪用。",
    "特困人员基本生活标准按照不低于当地最低生活保障标准的1.3倍确定，所需资金由旗财政统筹安排。",
)
MN_TITLE = (
    f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ{NNBSP}ᠤᠨ ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ ᠶᠢ ᠳᠡᠭᠡᠭᠰᠢᠯᠡᠭᠦᠯᠬᠦ ᠲᠤᠬᠠᠢ"
)
MN_SENTENCE = f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ{NNBSP}ᠤᠨ ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ{NNBSP}ᠶᠢ ᠨᠡᠮᠡᠨ᠎ᠡ᠃ "


def long_item(channel: str) -> dict[str, Any]:
    """About 6,000 Chinese characters in paragraphs and a Mongolian translation: more than
    one chat message in either language, so every channel has to cut or shorten."""
    paragraphs = [f"（{n}）" + "".join(ZH_SENTENCES) for n in range(1, 30)]
    body = "各苏木镇人民政府，旗直各有关部门：\n\n" + "\n\n".join(paragraphs)
    assert 5_500 <= len(body) <= 6_500
    mn_body = "\n\n".join(MN_SENTENCE * 6 for _ in range(14))
    return item(
        id=ITEM_ID,
        kind="notice",
        title=ZH_TITLE,
        regions=[VILLAGE],
        channels=[channel],
        summary="城乡低保标准每人每月提高60元，特困人员基本生活标准同步提高，12月起执行。",
        body=body,
        translations={"mn": {"title": MN_TITLE, "summary": MN_SENTENCE, "body": mn_body}},
    )


# --- each channel's documented limits --------------------------------------------------------
# The providers' numbers, written out here rather than read from the channels' own constants:
# a channel that raised its limit past the provider's would otherwise pass its own test.
# Sources: /work/shared/spec/providers.md and the pages it cites.

# WeCom group robot webhook/send: markdown.content ≤ 4096 bytes, text.content ≤ 2048 bytes,
# both UTF-8 (developer.work.weixin.qq.com/document/path/91770)
WECOM_MARKDOWN_BYTES, WECOM_TEXT_BYTES = 4096, 2048
# Telegram Bot API sendMessage: 1-4096 characters after entities parsing
# (core.telegram.org/bots/api#sendmessage)
TELEGRAM_TEXT_CHARS = 4096
# WeChat draft/add articles[]: title ≤ 32 characters, author ≤ 16, digest ≤ 128, content
# fewer than 20,000 characters and under 1 MB (developers.weixin.qq.com, draft/add)
WECHAT_TITLE, WECHAT_AUTHOR, WECHAT_DIGEST = 32, 16, 128
WECHAT_CONTENT_CHARS, WECHAT_CONTENT_BYTES = 20_000, 1_000_000
# Aliyun Dysms SendSms: PhoneNumbers ≤ 1000 (help.aliyun.com/document_detail/102364.html);
# a template variable ≤ 35 characters (unconfirmed in the docs: the account default we ship)
ALIYUN_NUMBERS, ALIYUN_VARIABLE_CHARS = 1000, 35


def robot_markdown_fits(part: dict[str, Any]) -> None:
    content = part[part["msgtype"]]["content"]
    limit = WECOM_MARKDOWN_BYTES if part["msgtype"] == "markdown" else WECOM_TEXT_BYTES
    assert 0 < len(content.encode("utf-8")) <= limit, f"{len(content.encode())} bytes"


def telegram_text_fits(part: dict[str, Any]) -> None:
    shown = telegram_api.parse_html(part["text"])  # the fake's own parser, not the renderer's
    assert 0 < telegram_api.utf16_len(shown) <= TELEGRAM_TEXT_CHARS


def wechat_article_fits(part: dict[str, Any]) -> None:
    article = part["article"]
    assert 0 < len(article["title"]) <= WECHAT_TITLE
    assert len(article["author"]) <= WECHAT_AUTHOR
    assert len(article["digest"]) <= WECHAT_DIGEST
    assert len(article["content"]) < WECHAT_CONTENT_CHARS
    assert len(article["content"].encode("utf-8")) < WECHAT_CONTENT_BYTES


def sms_request_fits(part: dict[str, Any]) -> None:
    assert 0 < len(part["phones"]) <= ALIYUN_NUMBERS
    for name, value in part["params"].items():
        # the providers bill UCS-2 code units; Mongolian and Chinese are one unit each
        assert 0 < len(value.encode("utf-16-le")) // 2 <= ALIYUN_VARIABLE_CHARS, (
            f"{name}: {value!r}"
        )
        assert not value.endswith(NNBSP)


def loudspeaker_part_fits(part: dict[str, Any]) -> None:
    if part["kind"] == "markdown":  # posted through the committee's WeCom robot
        assert 0 < len(part["content"].encode("utf-8")) <= WECOM_MARKDOWN_BYTES
    else:
        assert part["kind"] == "audio" and part["text"]


def web_part_fits(part: dict[str, Any]) -> None:
    assert part["kind"] == "page"
    query = "" if part["lang"] == "zh" else f"?lang={part['lang']}"
    assert part["url"] == f"{PUBLIC}/p/{ITEM_ID}{query}"


# --- what the fakes show after a recall ------------------------------------------------------


async def telegram_gone(state: Any, client: TestClient) -> bool:
    return bool(state.messages) and not state.visible(CHAT)


async def wechat_gone(state: Any, client: TestClient) -> bool:
    return bool(state.articles) and all(a["deleted"] for a in state.articles.values())


async def web_gone(state: Any, client: TestClient) -> bool:
    page = await client.get(f"/p/{ITEM_ID}")
    return page.status == 410 and "本信息已撤回" in await page.text()


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelCase:
    name: str
    check_part: Callable[[dict[str, Any]], None]  # the provider's documented limits
    min_parts: int  # the long item must really be cut where the channel cuts
    recallable: bool
    accounts: str = ""  # YAML under ``accounts:``
    targets: str = ""  # YAML list under the village's ``targets:``
    setting: str = ""  # the Settings field that points at the fake
    make_fake: Callable[[], tuple[web.Application, Any]] | None = None
    fail_once: Callable[[Any], None] | None = None  # the next request fails transiently
    fail_for_good: Callable[[Any], None] | None = None  # every request fails permanently
    permanent_error: str = ""  # in last_error after fail_for_good
    received: Callable[[Any], int] | None = None  # provider messages accepted
    gone: Callable[[Any, TestClient], Awaitable[bool]] | None = None  # recalled at the source
    no_fake: str = ""  # why the failure rows cannot apply


def _robot() -> tuple[web.Application, Any]:
    return wecom_robot.make_app(valid_keys={"robot-1", "robot-ls"})


def _wechat() -> tuple[web.Application, Any]:
    return wechat_api.make_app({APP_ID: APP_SECRET})


def _aliyun() -> tuple[web.Application, Any]:
    return aliyun_sms.make_app(
        templates={
            "SMS_000001": "${region}政务公开：${title}，详情见${link}",
            "SMS_000002": "${region}: ${title} ${link}",
        }
    )


def _telegram() -> tuple[web.Application, Any]:
    return telegram_api.make_app([BOT_TOKEN])


def _set(obj: Any, **values: Any) -> None:
    for k, v in values.items():
        setattr(obj, k, v)


CASES = [
    ChannelCase(
        name="web",
        check_part=web_part_fits,
        min_parts=1,
        recallable=True,
        gone=web_gone,
        no_fake="the web page is served by Gongkai itself: there is no provider that could fail",
    ),
    ChannelCase(
        name="wechat_mp",
        check_part=wechat_article_fits,
        min_parts=1,
        recallable=True,
        accounts=f"""
  wechat_mp:
    - {{name: ejhl, app_id: {APP_ID}, app_secret: {APP_SECRET}, token: t0ken,
       region: "{VILLAGE}"}}""",
        setting="wechat_api_base",
        make_fake=_wechat,
        fail_once=lambda s: s.fail_next("cgi-bin/freepublish/submit", -1),  # system busy
        fail_for_good=lambda s: s.accounts.update({APP_ID: "reset-in-the-console"}),
        permanent_error="WeChat refused the credentials",
        received=lambda s: len(s.jobs),
        gone=wechat_gone,
    ),
    ChannelCase(
        name="village_group",
        check_part=robot_markdown_fits,
        min_parts=2,
        recallable=False,
        targets="- {channel: village_group, robot_key: robot-1}",
        setting="wecom_api_base",
        make_fake=_robot,
        fail_once=lambda s: _set(s, fail_next=[502]),
        fail_for_good=lambda s: _set(s, valid_keys=set()),  # the robot was removed
        permanent_error="robot key invalid",
        received=lambda s: len(s.messages),
    ),
    ChannelCase(
        name="sms",
        check_part=sms_request_fits,
        min_parts=2,
        recallable=False,
        accounts=f"""
  sms:
    - {{name: county-sms, provider: aliyun, access_key_id: testid,
       access_key_secret: testsecret, sign_name: {SIGN}, template_code: SMS_000001,
       template_text: "${{region}}政务公开：${{title}}，详情见${{link}}",
       template_codes: {{mn: SMS_000002}},
       template_texts: {{mn: "${{region}}: ${{title}} ${{link}}"}},
       batch_size: 2}}""",
        targets='- {channel: sms, account: county-sms, phones: ["13800000000", "13900000001", '
        '"13700000002"]}',
        setting="aliyun_sms_endpoint",
        make_fake=_aliyun,
        fail_once=lambda s: s.fail_next("Throttling.User", "user flow control", status=400),
        fail_for_good=lambda s: _set(s, access_key_secret="rotated-secret"),
        permanent_error="SignatureDoesNotMatch",
        received=lambda s: s.accepted_requests,
    ),
    ChannelCase(
        name="loudspeaker",
        check_part=loudspeaker_part_fits,
        min_parts=2,
        recallable=False,
        targets="- {channel: loudspeaker, robot_key: robot-ls}",
        setting="wecom_api_base",
        make_fake=_robot,
        fail_once=lambda s: _set(s, fail_next=[503]),
        fail_for_good=lambda s: _set(s, valid_keys=set()),
        permanent_error="robot key invalid",
        received=lambda s: len(s.messages),
    ),
    ChannelCase(
        name="telegram",
        check_part=telegram_text_fits,
        min_parts=2,
        recallable=True,
        accounts=f"""
  telegram:
    - {{name: ordos, token: "{BOT_TOKEN}", webhook_secret: hook-secret}}""",
        targets=f"- {{channel: telegram, account: ordos, chat_id: {CHAT}}}",
        setting="telegram_api_base",
        make_fake=_telegram,
        fail_once=lambda s: _set(s, fail_next=[502]),
        fail_for_good=lambda s: s.tokens.clear(),  # the token was revoked at BotFather
        permanent_error="bot token rejected",
        received=lambda s: len(s.messages),
        gone=telegram_gone,
    ),
]


def directory_for(case: ChannelCase) -> str:
    targets = f"\n            targets:\n              {case.targets}" if case.targets else ""
    return f"""
accounts:{case.accounts or " {}"}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    names: {{mn: "ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ"}}
    children:
      - code: "150627100"
        name: 乌兰木伦镇
        children:
          - code: "{VILLAGE}"
            name: 巴图塔嘎查
            names: {{mn: "ᠪᠠᠲᠤᠲᠠ ᠭᠠᠴᠠᠭ᠎ᠠ"}}
            languages: [mn, zh]{targets}
"""
