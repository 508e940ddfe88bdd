"""The passive reply is built from a string template; it must stay what wechatpy renders."""

from __future__ import annotations

import pytest
from defusedxml.ElementTree import fromstring
from wechatpy.replies import TextReply

from gongkai.bots.wechat_messages import _cdata_safe, fit, text_reply

CONTENTS = [
    "低保怎么申请？请携带户口本到村委会。",
    "a ]]> b <xml>&amp;</xml>",  # would end the CDATA section early
    "控制字符\x00\x08\x0b在这里",  # XML cannot carry these
    "长" * 1500,  # over WeChat's passive-reply size
    "",
]


@pytest.mark.parametrize("content", CONTENTS)
def test_reply_is_what_wechatpy_renders(content: str) -> None:
    ours = text_reply("o_resident]]>", "gh_account", content, 1_700_000_000.7)
    theirs = TextReply(
        target=_cdata_safe("o_resident]]>"),
        source=_cdata_safe("gh_account"),
        content=_cdata_safe(fit(content)),
        time=1_700_000_000,
    ).render()
    assert ours == theirs
    tree = fromstring(ours)  # and it parses, the text intact
    assert tree.findtext("ToUserName") == "o_resident]]>"
    assert tree.findtext("Content") == fit(content).replace("\x00", "").replace("\x08", "").replace(
        "\x0b", ""
    )
