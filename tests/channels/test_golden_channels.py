"""Every chat, SMS, loudspeaker and official-account rendering of one real notice, compared
with golden files: a change in wording, order, cutting or escaping shows up as a diff a person
reads before it reaches villagers.

The notice is a county 低保 policy with a document number, dates, amounts, a table, a
hotline and a Mongolian translation in traditional script (suffixes joined by U+202F), long
enough that the bilingual village-group message needs several WeCom messages.

Set GONGKAI_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then read
the diff before committing it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from gongkai.channels import registry, rendering
from gongkai.channels.base import ItemView, Rendered, TargetView
from gongkai.channels.markdown_speech import speech_marks_left
from gongkai.channels.spoken import assert_speakable
from tests.golden import assert_golden

PUBLIC = "https://gk.yjhl.gov.cn"
WECOM_MARKDOWN_BYTES = 4096  # WeCom group robot: markdown.content, UTF-8 (providers.md)
NNBSP = "\u202f"
MONGOLIAN = re.compile(r"[\u1800-\u18af\u202f]+")
CJK = re.compile(r"[\u4e00-\u9fff]")

# --- the notice ------------------------------------------------------------------------------

_SUFFIX = re.compile(r" (?=(?:ᠤ|ᠦ|ᠤᠨ|ᠦᠨ|ᠶᠢᠨ|ᠶᠢ|ᠢ|ᠳᠤ|ᠳᠦ|ᠡᠴᠡ|ᠠᠴᠠ|ᠢᠶᠠᠷ|ᠢᠶᠡᠷ)(?=[ ᠂᠃᠄»\n]|$))")


def mongolian(text: str) -> str:
    """Join case suffixes to their word with U+202F, as a Mongolian typist does."""
    return _SUFFIX.sub(NNBSP, text)


ZH_BODY = """各苏木镇人民政府，旗直各有关部门：

根据《内蒙古自治区民政厅 财政厅关于提高2026年城乡最低生活保障标准的通知》精神，经旗人民政府研究同意，现将我旗2026年城乡低保标准调整有关事项通知如下。

## 一、调整标准

自2026年12月1日起，城乡低保标准每人每月提高**60元**：

| 类别 | 原标准 | 新标准 |
|---|---|---|
| 城市低保 | 840元/人/月 | 900元/人/月 |
| 农村牧区低保 | 620元/人/月 | 680元/人/月 |
| 特困人员基本生活标准 | 1092元/人/月 | 1170元/人/月 |

## 二、资金发放

调整后的低保金于2026年12月10日前通过"一卡通"足额发放到户，12月份差额部分一并补发。各苏木镇要于2026年12月5日前完成低保对象信息核对，确保不错发、不漏发。

## 三、工作要求

1. 各苏木镇、嘎查村要通过村务公开栏、微信群、大喇叭等方式做好政策宣传。
2. 严格落实"三审三公示"制度，公示期不少于7天。
3. 对弄虚作假骗取低保金的，依法追回并严肃处理。

咨询电话：0477-8612345（工作日8:30—12:00，14:30—18:00）。政策原文见 [伊金霍洛旗人民政府网](https://www.yjhl.gov.cn/zwgk/41.html)。"""  # noqa: E501

_LIVING = "ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ ᠳᠣᠣᠷ᠎ᠠ ᠬᠡᠮᠵᠢᠶ᠎ᠡ"  # minimum living standard (U+180E inside)
MN = {
    "title": mongolian(f"2026 ᠣᠨ ᠤ ᠬᠣᠲᠠ ᠰᠠᠯᠠ ᠶᠢᠨ {_LIVING} ᠶᠢ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠬᠤ ᠲᠤᠬᠠᠢ ᠮᠡᠳᠡᠭᠳᠡᠯ"),
    "summary": mongolian(
        f"{_LIVING} ᠨᠢᠭᠡ ᠬᠥᠮᠥᠨ ᠳᠦ ᠰᠠᠷ᠎ᠠ ᠳᠤ 60 ᠶᠤᠸᠠᠨ ᠢᠶᠠᠷ ᠨᠡᠮᠡᠭᠳᠡᠨ᠎ᠡ᠃ "
        "2026 ᠣᠨ ᠤ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ 1 ᠡᠴᠡ ᠡᠬᠢᠯᠡᠨ ᠬᠡᠷᠡᠭᠵᠢᠭᠦᠯᠦᠨ᠎ᠡ᠃"
    ),
    "issuer": mongolian("ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠠᠷᠠᠳ ᠤᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠭᠠᠵᠠᠷ ᠤᠨ ᠠᠯᠪᠠᠨ ᠲᠠᠰᠤᠭ"),
    "subject": mongolian("ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠢᠷᠭᠡᠨ ᠦ ᠬᠡᠷᠡᠭ ᠦᠨ ᠲᠣᠪᠴᠢᠶ᠎ᠠ"),
    "body": mongolian(
        "ᠰᠤᠮᠤ ᠪᠠᠯᠭᠠᠰᠤ ᠪᠦᠷᠢ ᠶᠢᠨ ᠠᠷᠠᠳ ᠤᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠭᠠᠵᠠᠷ᠂ ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠬᠠᠮᠢᠶ᠎ᠠ ᠪᠦᠬᠦᠢ "
        "ᠪᠠᠢᠭᠤᠯᠤᠯᠭ᠎ᠠ ᠨᠤᠭᠤᠳ᠄\n\n"
        "ᠥᠪᠥᠷ ᠮᠣᠩᠭᠣᠯ ᠤᠨ ᠥᠪᠡᠷᠲᠡᠭᠡᠨ ᠵᠠᠰᠠᠬᠤ ᠣᠷᠣᠨ ᠤ ᠢᠷᠭᠡᠨ ᠦ ᠬᠡᠷᠡᠭ ᠦᠨ ᠲᠢᠩᠬᠢᠮ ᠤᠨ ᠮᠡᠳᠡᠭᠳᠡᠯ ᠦᠨ ᠰᠦᠨᠳᠡᠯ ᠢ "
        "ᠦᠨᠳᠦᠰᠦᠯᠡᠨ᠂ ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠠᠷᠠᠳ ᠤᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠭᠠᠵᠠᠷ ᠤᠨ ᠵᠥᠪᠰᠢᠶᠡᠷᠡᠯ ᠢᠶᠡᠷ 2026 ᠣᠨ ᠤ ᠬᠣᠲᠠ ᠰᠠᠯᠠ ᠶᠢᠨ "
        f"{_LIVING} ᠶᠢ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠬᠤ ᠲᠤᠬᠠᠢ ᠵᠦᠢᠯ ᠢ ᠳᠣᠷᠣᠭᠰᠢ ᠮᠡᠳᠡᠭᠳᠡᠵᠡᠢ᠃\n\n"
        "## ᠨᠢᠭᠡ᠂ ᠬᠡᠮᠵᠢᠶ᠎ᠡ ᠶᠢ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠬᠤ\n\n"
        f"2026 ᠣᠨ ᠤ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ 1 ᠡᠴᠡ ᠡᠬᠢᠯᠡᠨ ᠬᠣᠲᠠ ᠰᠠᠯᠠ ᠶᠢᠨ {_LIVING} ᠶᠢ ᠨᠢᠭᠡ ᠬᠥᠮᠥᠨ ᠳᠦ "
        "ᠰᠠᠷ᠎ᠠ ᠳᠤ **60 ᠶᠤᠸᠠᠨ** ᠢᠶᠠᠷ ᠨᠡᠮᠡᠭᠳᠡᠨ᠎ᠡ᠄\n\n"
        f"- ᠬᠣᠲᠠ ᠶᠢᠨ {_LIVING}᠄ ᠨᠢᠭᠡ ᠬᠥᠮᠥᠨ ᠳᠦ ᠰᠠᠷ᠎ᠠ ᠳᠤ 840 ᠶᠤᠸᠠᠨ ᠠᠴᠠ 900 ᠶᠤᠸᠠᠨ ᠳᠤ ᠬᠦᠷᠭᠡᠨ᠎ᠡ᠃\n"
        f"- ᠬᠥᠳᠡᠭᠡ ᠮᠠᠯᠵᠢᠬᠤ ᠣᠷᠣᠨ ᠤ {_LIVING}᠄ 620 ᠶᠤᠸᠠᠨ ᠠᠴᠠ 680 ᠶᠤᠸᠠᠨ ᠳᠤ ᠬᠦᠷᠭᠡᠨ᠎ᠡ᠃\n"
        "- ᠣᠨᠴᠠ ᠬᠡᠴᠡᠭᠦᠦ ᠬᠥᠮᠥᠨ ᠦ ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠬᠡᠮᠵᠢᠶ᠎ᠡ᠄ 1092 ᠶᠤᠸᠠᠨ ᠠᠴᠠ 1170 ᠶᠤᠸᠠᠨ ᠳᠤ ᠬᠦᠷᠭᠡᠨ᠎ᠡ᠃\n\n"
        "## ᠬᠣᠶᠠᠷ᠂ ᠮᠥᠩᠭᠥ ᠣᠯᠭᠣᠬᠤ\n\n"
        "ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠤᠭᠰᠠᠨ ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ ᠮᠥᠩᠭᠥ ᠶᠢ 2026 ᠣᠨ ᠤ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ 10 ᠡᠴᠡ ᠡᠮᠦᠨ᠎ᠡ "
        "«ᠨᠢᠭᠡ ᠺᠠᠷᠲ» ᠢᠶᠠᠷ ᠳᠠᠮᠵᠢᠭᠤᠯᠤᠨ ᠭᠡᠷ ᠪᠦᠯᠢ ᠳᠤ ᠪᠦᠷᠢᠨ ᠣᠯᠭᠣᠨ᠎ᠠ᠃ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ ᠵᠥᠷᠢᠭᠦ ᠶᠢ ᠬᠠᠮᠲᠤ "
        "ᠨᠥᠬᠦᠨ ᠣᠯᠭᠣᠨ᠎ᠠ᠃ ᠰᠤᠮᠤ ᠪᠠᠯᠭᠠᠰᠤ ᠪᠦᠷᠢ 2026 ᠣᠨ ᠤ 12 ᠰᠠᠷ᠎ᠠ ᠶᠢᠨ 5 ᠡᠴᠡ ᠡᠮᠦᠨ᠎ᠡ ᠠᠮᠢᠵᠢᠭᠤᠯᠠᠯ ᠤᠨ "
        "ᠲᠤᠰᠠᠯᠠᠮᠵᠢ ᠠᠪᠬᠤ ᠭᠡᠷ ᠪᠦᠯᠢ ᠶᠢᠨ ᠮᠡᠳᠡᠭᠡ ᠶᠢ ᠬᠢᠨᠠᠨ ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠵᠤ᠂ ᠪᠤᠷᠤᠭᠤ ᠣᠯᠭᠣᠬᠤ ᠪᠤᠶᠤ "
        "ᠣᠷᠬᠢᠭᠳᠠᠭᠤᠯᠬᠤ ᠦᠭᠡᠢ ᠪᠠᠢᠯᠭᠠᠨ᠎ᠠ᠃\n\n"
        "## ᠭᠤᠷᠪᠠ᠂ ᠠᠵᠢᠯ ᠤᠨ ᠰᠢᠭᠠᠷᠳᠠᠯᠭ᠎ᠠ\n\n"
        "1. ᠰᠤᠮᠤ ᠪᠠᠯᠭᠠᠰᠤ᠂ ᠭᠠᠴᠠᠭ᠎ᠠ ᠲᠣᠰᠣᠭᠠᠨ ᠨᠤᠭᠤᠳ ᠣᠯᠠᠨ ᠨᠡᠢᠲᠡ ᠶᠢᠨ ᠵᠠᠷᠯᠠᠯ ᠤᠨ ᠰᠠᠮᠪᠠᠷ᠎ᠠ᠂ "
        "ᠸᠢᠴᠠᠲ ᠪᠦᠯᠬᠦᠮ᠂ ᠳᠠᠭᠤ ᠠᠯᠳᠠᠷᠢᠭᠤᠯᠬᠤ ᠪᠠᠭᠤᠷ ᠢᠶᠠᠷ ᠪᠣᠳᠣᠯᠭ᠎ᠠ ᠶᠢ ᠰᠤᠷᠲᠠᠯᠴᠢᠯᠠᠨ᠎ᠠ᠃\n"
        "2. «ᠭᠤᠷᠪᠠ ᠤᠳᠠᠭ᠎ᠠ ᠬᠢᠨᠠᠬᠤ᠂ ᠭᠤᠷᠪᠠ ᠤᠳᠠᠭ᠎ᠠ ᠣᠯᠠᠨ ᠳᠤ ᠵᠠᠷᠯᠠᠬᠤ» ᠲᠣᠭᠲᠠᠭᠠᠯ ᠢ ᠬᠠᠩᠭᠤᠨ "
        "ᠬᠡᠷᠡᠭᠵᠢᠭᠦᠯᠵᠦ᠂ ᠵᠠᠷᠯᠠᠬᠤ ᠬᠤᠭᠤᠴᠠᠭ᠎ᠠ ᠨᠢ 7 ᠡᠳᠦᠷ ᠡᠴᠡ ᠳᠤᠲᠠᠭᠤ ᠦᠭᠡᠢ᠃\n"
        "3. ᠬᠣᠣᠷᠮᠠᠭ ᠮᠡᠳᠡᠭᠡ ᠥᠭᠴᠦ ᠲᠤᠰᠠᠯᠠᠮᠵᠢ ᠠᠪᠤᠭᠰᠠᠨ ᠢ ᠬᠠᠤᠯᠢ ᠶᠣᠰᠣᠭᠠᠷ ᠪᠤᠴᠠᠭᠠᠨ ᠬᠤᠷᠢᠶᠠᠵᠤ ᠴᠢᠩᠭ᠎ᠠ "
        "ᠰᠢᠢᠳᠪᠦᠷᠢᠯᠡᠨ᠎ᠡ᠃\n\n"
        "ᠯᠠᠪᠯᠠᠬᠤ ᠤᠲᠠᠰᠤ᠄ 0477-8612345 (ᠠᠵᠢᠯ ᠤᠨ ᠡᠳᠦᠷ 8:30—12:00᠂ 14:30—18:00)᠃ "
        "ᠪᠣᠳᠣᠯᠭ᠎ᠠ ᠶᠢᠨ ᠡᠬᠡ ᠪᠢᠴᠢᠭ᠄ "
        "[ᠬᠣᠰᠢᠭᠤ ᠶᠢᠨ ᠠᠷᠠᠳ ᠤᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠭᠠᠵᠠᠷ ᠤᠨ ᠰᠦᠯᠵᠢᠶ᠎ᠡ](https://www.yjhl.gov.cn/zwgk/41.html)᠃"
    ),
}
UG = {
    "title": "2026-يىلى شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمىنى تەڭشەش توغرىسىدا ئۇقتۇرۇش",
    "summary": "شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمى ھەر بىر ئادەمگە ئايدا 60 يۈەن ئۆستۈرۈلىدۇ، "
    "2026-يىلى 12-ئاينىڭ 1-كۈنىدىن باشلاپ ئىجرا قىلىنىدۇ.",
    "body": "ھەرقايسى بازارلىق خەلق ھۆكۈمەتلىرى:\n\n"
    "## بىرىنچى، ئۆلچەمنى تەڭشەش\n\n"
    "2026-يىلى 12-ئاينىڭ 1-كۈنىدىن باشلاپ، شەھەر-يېزا تۇرمۇش كاپالىتى ئۆلچىمى ھەر بىر "
    "ئادەمگە ئايدا **60 يۈەن** ئۆستۈرۈلىدۇ:\n\n"
    "| تۈر | ئەسلىدىكى ئۆلچەم | يېڭى ئۆلچەم |\n|---|---|---|\n"
    "| شەھەر تۇرمۇش كاپالىتى | 840 يۈەن | 900 يۈەن |\n"
    "| يېزا-چارۋىچىلىق رايونى تۇرمۇش كاپالىتى | 620 يۈەن | 680 يۈەن |\n\n"
    "## ئىككىنچى، پۇل تارقىتىش\n\n"
    "تەڭشەلگەن تۇرمۇش كاپالەت پۇلى 2026-يىلى 12-ئاينىڭ 10-كۈنىدىن بۇرۇن «بىر كارتا» "
    "ئارقىلىق ئائىلىلەرگە تولۇق تارقىتىلىدۇ.\n\n"
    "مەسلىھەت تېلېفونى: 0477-8612345. "
    "[تولۇق تېكىست](https://www.yjhl.gov.cn/zwgk/41.html)",
}


def policy(**changes: Any) -> ItemView:
    fields: dict[str, Any] = {
        "id": "ejhl-2026-0113",
        "kind": "policy",
        "title": "关于2026年城乡低保标准调整的通知",
        "summary": "城乡低保标准每人每月提高60元，城市900元、农村牧区680元，"
        "2026年12月1日起执行，12月10日前发放到户。",
        "body": ZH_BODY,
        "doc_number": "伊政办发〔2026〕3号",
        "issuer": "伊金霍洛旗人民政府办公室",
        "issued_at": date(2026, 11, 2),
        "published_at": datetime(2026, 11, 20, 2, 0, tzinfo=UTC),  # 10:00 in Inner Mongolia
        "domain": "社会救助",
        "urgent": False,
        "catalog": {"subject": "伊金霍洛旗民政局", "hotline": "0477-8612345"},
        "translations": {"mn": dict(MN), "ug": dict(UG)},
        "regions": ("150627100201",),
    }
    fields.update(changes)
    return ItemView(**fields)


def short_notice() -> ItemView:
    """The same notice cut down to what a loudspeaker reads in full (not just the summary)."""
    body = ZH_BODY.split("## 一、调整标准\n\n")[1].split("\n\n## 二")[0]
    mn_body = MN["body"].split("ᠲᠣᠬᠢᠷᠠᠭᠤᠯᠬᠤ\n\n")[1].split("\n\n## ᠬᠣᠶᠠᠷ")[0]
    return policy(
        body=body + "\n\n咨询电话：0477-8612345（工作日8:30—12:00，14:30—18:00）。",
        translations={"mn": {**MN, "body": mn_body}},
    )


# --- the targets, as the directory describes them --------------------------------------------

ADDRESSES: dict[str, dict[str, Any]] = {
    "wechat_mp": {},
    "village_group": {"robot_key": "robot-1"},
    "sms": {"phones": ["13800000000", "139 0000 0001"]},
    "loudspeaker": {"robot_key": "committee-1"},
    "telegram": {"chat_id": -1001234567890},
    "web": {},
}
ACCOUNTS: dict[str, dict[str, Any] | None] = {
    "wechat_mp": {
        "name": "ejhl",
        "app_id": "wx0000000000000001",
        "app_secret": "s3cret-app",
        "token": "t0ken",
    },
    "village_group": None,
    "sms": {
        "name": "county-sms",
        "provider": "aliyun",
        "access_key_id": "testid",
        "access_key_secret": "testsecret",
        "sign_name": "伊金霍洛旗政务公开",
        "template_code": "SMS_000001",
        "template_codes": {"mn": "SMS_000002"},
        # no template_text: the preview uses the shipped sms/<lang>/template.j2 wording
        "variable_max_len": 60,  # the county's approved variable length, links fit
    },
    "loudspeaker": None,
    "telegram": {"name": "ordos", "token": "123456:TEST-token", "webhook_secret": "hook-secret"},
    "web": None,
}


def target(channel: str, languages: tuple[str, ...]) -> TargetView:
    account = ACCOUNTS[channel]
    return TargetView(
        id=7,
        channel=channel,
        region_code="150627100201",
        region_name="巴图塔嘎查",
        region_names={"mn": "ᠪᠠᠭᠠᠲᠤᠷ ᠲᠠᠭ᠎ᠠ ᠭᠠᠴᠠᠭ᠎ᠠ"},
        languages=languages,
        address=dict(ADDRESSES[channel]),
        account=dict(account) if account else None,
        account_name=account["name"] if account else None,
    )


@pytest.fixture(autouse=True)
def shipped_templates_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What varies with the machine is pinned: a data dir without template overrides, and
    the default speech engine (whether an audio part follows depends on it)."""
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GONGKAI_TTS_ENGINE", raising=False)
    rendering._labels.cache_clear()


# --- golden files ----------------------------------------------------------------------------


def as_json(rendered: Rendered) -> str:
    data = {"parts": rendered.parts, "notes": rendered.notes, "meta": rendered.meta}
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render(channel: str, languages: tuple[str, ...], item: ItemView | None = None) -> Rendered:
    return registry.get(channel).render(item or policy(), target(channel, languages), PUBLIC)


CASES = [
    ("wechat_mp", ("zh",)),
    ("wechat_mp", ("mn", "zh")),
    ("village_group", ("zh",)),
    ("village_group", ("mn",)),
    ("village_group", ("mn", "zh")),
    ("village_group", ("ug", "zh")),
    ("sms", ("zh",)),
    ("sms", ("mn", "zh")),
    ("loudspeaker", ("zh",)),
    ("loudspeaker", ("mn", "zh")),
    ("telegram", ("zh",)),
    ("telegram", ("mn",)),
    ("telegram", ("mn", "zh")),
]


@pytest.mark.parametrize(
    ("channel", "languages"), CASES, ids=[f"{c}_{'+'.join(ls)}" for c, ls in CASES]
)
def test_rendering_matches_its_golden_file(channel: str, languages: tuple[str, ...]) -> None:
    rendered = render(channel, languages)
    assert not any(n.startswith("translation missing") for n in rendered.notes)
    assert_golden(f"{channel}_{'+'.join(languages)}.json", as_json(rendered))


CHANNELS = ["wechat_mp", "village_group", "sms", "loudspeaker", "telegram"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_missing_translation_sends_chinese_and_says_so(channel: str) -> None:
    rendered = render(channel, ("mn", "zh"), policy(translations={}))
    assert "translation missing: mn" in rendered.notes
    assert rendered.parts and not MONGOLIAN.search(_texts(rendered))
    assert_golden(f"{channel}_mn+zh_missing-mn.json", as_json(rendered))


def test_loudspeaker_reads_a_short_notice_in_full() -> None:
    rendered = render("loudspeaker", ("mn", "zh"), short_notice())
    scripts = {p["lang"]: p["content"] for p in rendered.parts if p["kind"] == "markdown"}
    assert "八百四十元每人每月" in scripts["zh"] and "八点三十分到十二点" in scripts["zh"]
    assert "840 ᠶᠤᠸᠠᠨ" in scripts["mn"]  # Mongolian reads the body too, not the summary
    # a long sentence is cut at a comma outside brackets: no line opens one another closes
    assert all(line.count("（") == line.count("）") for line in scripts["zh"].splitlines())
    assert_golden("loudspeaker_mn+zh_short-notice.json", as_json(rendered))


@pytest.mark.parametrize("channel", ["wechat_mp", "sms", "loudspeaker"])
def test_mongolian_alone_renders_as_mongolian_with_chinese(channel: str) -> None:
    """These channels always carry Chinese beside Mongolian (the article's original, the
    SMS fallback, the committee's second script), so [mn] needs no golden file of its own."""
    assert as_json(render(channel, ("mn",))) == as_json(render(channel, ("mn", "zh")))


# --- what the golden files must show ---------------------------------------------------------


def test_bilingual_village_message_is_cut_into_numbered_parts_mongolian_first() -> None:
    rendered = render("village_group", ("mn", "zh"))
    contents = [p["markdown"]["content"] for p in rendered.parts]
    assert len(contents) > 1 and rendered.meta["parts"] == len(contents)
    mn_link = rendering.render(
        "village_group", "mn", "link.md", lang_url=f"{PUBLIC}/p/ejhl-2026-0113?lang=mn"
    )
    footer = f"{mn_link}\n[查看全文]({PUBLIC}/p/ejhl-2026-0113)"
    for n, content in enumerate(contents, start=1):
        assert len(content.encode("utf-8")) <= WECOM_MARKDOWN_BYTES
        assert rendered.meta["bytes"][n - 1] == len(content.encode("utf-8"))
        assert content.startswith(f"（{n}/{len(contents)}）\n")
        assert content.endswith("\n\n" + footer)
        text = content.removesuffix(footer)
        last_block = text.strip().rsplit("\n\n", 1)[-1]
        assert not last_block.startswith("#"), f"part {n} ends on a heading: {last_block}"
        if MONGOLIAN.search(text) and CJK.search(text.replace("伊政办发〔2026〕3号", "")):
            assert MONGOLIAN.search(text).start() < CJK.search(text).start(), n  # type: ignore[union-attr]
    # every Mongolian word arrives whole, suffixes still joined by U+202F
    source = " ".join([MN["title"], MN["summary"], MN["issuer"], MN["body"], mn_link])
    words = set(MONGOLIAN.findall(source)) | {"ᠣᠨ\u202fᠤ", "ᠰᠠᠷ᠎ᠠ\u202fᠶᠢᠨ"}  # the date
    for content in contents:
        assert set(MONGOLIAN.findall(content)) <= words
    assert all(content.count(NNBSP) > 10 for content in contents[:-1])
    # nothing WeCom would show literally: tables are flattened to "header: cell" lines
    assert "|" not in "".join(contents) and "- 类别: 城市低保 · 原标准: 840元/人/月" in contents[1]


def test_goldens_carry_no_markup_the_channel_forbids() -> None:
    telegram = _texts(render("telegram", ("mn", "zh")))
    assert "**" not in telegram and "## " not in telegram and "|" not in telegram
    assert set(re.findall(r"</?([a-z-]+)", telegram)) <= {"b", "i", "a", "blockquote"}
    sms = render("sms", ("mn", "zh"))
    assert sms.meta["text"].startswith("【伊金霍洛旗政务公开】") and not set("*#[]|") & set(
        sms.meta["text"]
    )
    title = sms.parts[0]["params"]["title"]
    assert title.endswith("…") and title[:-1].rstrip() in MN["title"]
    assert MN["title"][len(title[:-1].rstrip())] in " \u202f"  # cut between words
    speaker = render("loudspeaker", ("mn", "zh"))
    scripts = {p["lang"]: p["text"] for p in speaker.parts if p["kind"] == "audio"}
    assert_speakable(scripts["zh"])
    for part in speaker.parts:
        if part["kind"] == "markdown":
            script = part["content"].split("\n\n", 1)[1]
            assert speech_marks_left(script) == [], part["lang"]
    article = render("wechat_mp", ("mn", "zh")).parts[0]["article"]
    digest = article["digest"]
    kept = digest[:-1].rstrip()
    assert digest.endswith("…") and MN["summary"].startswith(kept)
    assert MN["summary"][len(kept)] in " \u202f"  # cut between words, not inside one


def test_a_cut_digest_keeps_suffix_joiners_when_the_summary_has_line_breaks() -> None:
    summary = MN["summary"].replace("᠃ ", "᠃\n")
    item = policy(translations={"mn": {**MN, "summary": summary}})
    digest = render("wechat_mp", ("mn", "zh"), item).parts[0]["article"]["digest"]
    assert "ᠬᠥᠮᠥᠨ\u202fᠳᠦ ᠰᠠᠷ᠎ᠠ\u202fᠳᠤ" in digest and "\n" not in digest


def _texts(rendered: Rendered) -> str:
    return "\n".join(_strings(rendered.parts))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_channel_hands_out_the_same_link_for_an_id_that_needs_quoting() -> None:
    """An id may hold ":"; the SMS, the robot message, Telegram, the article's "read more"
    and the page itself must all point a reader at one address, quoted the same way."""
    item = policy(id="ejhl:2026-0113")
    page = f"{PUBLIC}/p/ejhl%3A2026-0113"
    links: dict[str, set[str]] = {}
    for channel in ["village_group", "sms", "telegram", "wechat_mp", "web"]:
        languages = ("mn",) if channel == "web" else ("mn", "zh")
        rendered = registry.get(channel).render(item, target(channel, languages), PUBLIC)
        found = re.findall(r"https://gk\.yjhl\.gov\.cn/p/[^\s\"'<>)]*", _texts(rendered))
        links[channel] = set(found)
    assert links["village_group"] == links["telegram"] == {page, f"{page}?lang=mn"}
    assert links["web"] == {f"{page}?lang=mn"}
    # the SMS carries a short link (/s/{code}, its code drawn at planning; a preview's stand-in
    # here), which redirects to the same quoted address (tests/web/test_short_links.py)
    assert links["sms"] == set()
    assert f"{PUBLIC}/s/xxxxxx" in _texts(
        registry.get("sms").render(item, target("sms", ("zh",)), PUBLIC)
    )
    assert links["wechat_mp"] == {page}
