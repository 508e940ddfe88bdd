"""The accounts the sandbox knows: the demo directory's (gongkai/demo/directory.yaml).

A simulator checks signatures, so it must know the secrets; these are published on purpose and
valid nowhere but in the sandbox. A county training on its own directory puts these values in
the accounts it points at the sandbox (any WeCom robot key is accepted).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WechatAccount:
    app_id: str
    app_secret: str
    name: str  # the account's name in the directory: its callback is /wechat/{name}
    token: str  # the callback token WeChat signs its pushes with


WECHAT = (WechatAccount("wx0000000000000001", "sandbox-app-secret", "ejhl", "demotoken"),)
TELEGRAM_TOKENS = ("100001:sandbox-demo-token",)

ALIYUN_KEY_ID = "sandbox-aliyun-key-id"
ALIYUN_KEY_SECRET = "sandbox-aliyun-secret"
TENCENT_SECRET_ID = "AKIDsandboxSecretId0001"
TENCENT_SECRET_KEY = "sandbox-tencent-secret-key"
TENCENT_SDK_APP_ID = "1400000001"
SMS_SIGNS = ("伊金霍洛旗政务公开",)
# Approved templates. SMS_000001 is Gongkai's default wording (the demo sends it, its link a short
# link); SMS_000002 carries no link.
ALIYUN_TEMPLATES = {
    "SMS_000001": "您好，${title}已发布，详情：${link}",
    "SMS_000002": "${region}：${title}已发布，详见村务公开栏或旗政府网站。",
}
TENCENT_TEMPLATES = {"1001": "{1}：{2}已发布，详见村务公开栏或旗政府网站。"}
