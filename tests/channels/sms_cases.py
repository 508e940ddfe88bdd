"""Shared builders for the SMS tests: items, accounts, targets and a send context."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp

from gongkai.channels.base import (
    ItemView,
    SendContext,
    TargetView,
)
from gongkai.config import Settings

PUBLIC = "http://127.0.0.1:8080"
SIGN = "伊金霍洛旗政务公开"
# The codes planning would have drawn for make_item()'s short links.
CODES = {"sms:zh": "Zh7abc", "sms:mn": "Mn7abc"}
MN_TITLE = "ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠳᠤᠤᠷ\u202fᠠ ᠬᠡᠮᠵᠢᠶ\u202fᠡ ᠶᠢ ᠳᠡᠭᠡᠭᠰᠢᠯᠡᠭᠦᠯᠬᠦ ᠲᠤᠬᠠᠢ"


def make_item(**changes: Any) -> ItemView:
    fields: dict[str, Any] = {
        "id": "2026-0113",
        "kind": "notice",
        "title": "关于2026年城乡低保标准调整的通知",
        "summary": "城乡低保标准每人每月提高60元，12月起执行。",
        "body": "正文",
        "doc_number": "伊政办发〔2026〕3号",
        "issuer": "伊金霍洛旗人民政府办公室",
        "issued_at": date(2026, 11, 2),
        "published_at": None,
        "domain": "社会救助",
        "urgent": False,
        "catalog": {},
        "translations": {"mn": {"title": MN_TITLE, "summary": "ᠰᠠᠷ\u202fᠠ ᠪᠦᠷᠢ"}},
    }
    fields.update(changes)
    return ItemView(**fields)


def aliyun_account(**changes: Any) -> dict[str, Any]:
    account = {
        "name": "county-sms",
        "provider": "aliyun",
        "access_key_id": "testid",
        "access_key_secret": "testsecret",
        "sign_name": SIGN,
        "template_code": "SMS_000001",
        "template_text": "${region}政务公开：${title}，详情见${link}",
    }
    account.update(changes)
    return account


def tencent_account(**changes: Any) -> dict[str, Any]:
    account = {
        "name": "county-tc",
        "provider": "tencent",
        "secret_id": "AKIDfakeSmsSecretId0001",
        "secret_key": "fake-tencent-secret-key",
        "sdk_app_id": "1400000001",
        "sign_name": SIGN,
        "template_code": "1001",
        "template_text": "{region}政务公开：{title}，详情请登录政府网站查看（{item_id}）",
    }
    account.update(changes)
    return account


def make_target(account: dict[str, Any], phones: list[str], languages=("zh",)) -> TargetView:
    return TargetView(
        id=1,
        channel="sms",
        region_code="150627100201",
        region_name="巴图塔嘎查",
        region_names={"mn": "ᠪᠠᠲᠤᠲᠠᠭ\u202fᠠ"},
        languages=tuple(languages),
        address={"phones": phones},
        account=account,
        account_name=account["name"],
    )


def phones(n: int, start: int = 0) -> list[str]:
    return [f"139{start + i:08d}" for i in range(n)]


def ctx_for(http: aiohttp.ClientSession, target: TargetView, base: str, index: int = 0):
    settings = Settings(aliyun_sms_endpoint=base, tencent_sms_endpoint=base)
    return SendContext(
        http=http,
        settings=settings,
        redis=None,
        target=target,
        item_id="2026-0113",
        delivery_id=42,
        part_index=index,
    )
