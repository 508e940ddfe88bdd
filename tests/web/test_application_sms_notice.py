"""An applicant who chose SMS is told of a correction, an extension and the answer through
the county's SMS account (the Aliyun fake enforcing sign, template, variables and limits)."""

from __future__ import annotations

import pytest

from gongkai.sandbox import aliyun_sms
from gongkai.sandbox.server import serve
from tests.support import prepare_db, running_app, settings_for, token

TEMPLATE = "您的政府信息公开申请${number}${status}，请凭查询码查询。"


@pytest.fixture
async def county(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    from gongkai.storage.models import Role

    fake, state = aliyun_sms.make_app(templates={"SMS_APPLY": TEMPLATE})
    async with serve(fake) as base:
        s = settings_for(tmp_path, aliyun_sms_endpoint=base, applications_sms_template="SMS_APPLY")
        await prepare_db(s)
        publisher = await token(s, Role.publisher, "办理人")
        async with running_app(s, embedded_redis_url) as client:
            client.auth = {"Authorization": f"Bearer {publisher}"}  # type: ignore[attr-defined]
            yield client, state


async def test_correction_extension_and_answer_reach_the_applicant_by_sms(county) -> None:
    client, state = county
    r = await client.post(
        "/api/v1/applications",
        json={"name": "乌云", "phone": "13600002222", "description": "嘎查草场确权名册",
              "reply_channel": "sms"},
    )  # fmt: skip
    number = (await r.json())["number"]

    async def step(**body: object) -> dict:
        r = await client.post(
            f"/api/v1/applications/{number}/steps", json=body, headers=client.auth
        )
        assert r.status == 200, await r.text()
        return await r.json()

    await step(step="register")
    await step(step="request_correction", note="请写明嘎查名称")
    await step(step="corrected", text="苏布尔嘎嘎查")
    await step(step="extend", approver="张主任", workdays=10)
    record = await step(step="answer", outcome="granted", reply_text="名册见附件")
    texts = state.texts_to("13600002222")
    assert texts == [
        f"【伊金霍洛旗政务公开】您的政府信息公开申请{number}{status}，请凭查询码查询。"
        for status in ("需要补正", "已延长答复期限", "已答复")
    ]
    assert "名册" not in "".join(texts)  # the reply stays behind the code
    notices = [e for e in record["events"] if e["step"] == "notice"]
    assert [n["detail"]["message_id"] for n in notices] == [m.biz_id for m in state.messages]
    assert len({m.out_id for m in state.messages}) == 3


async def test_a_refused_notice_is_recorded_and_the_step_stands(county) -> None:
    client, state = county
    r = await client.post(
        "/api/v1/applications",
        json={
            "name": "乌云",
            "phone": "13600003333",
            "description": "名册",
            "reply_channel": "sms",
        },
    )
    number = (await r.json())["number"]
    state.templates.clear()  # the provider no longer knows the template
    for body in ({"step": "register"}, {"step": "answer", "outcome": "granted"}):
        r = await client.post(
            f"/api/v1/applications/{number}/steps", json=body, headers=client.auth
        )
        assert r.status == 200
    record = await r.json()
    assert record["status"] == "answered"
    (notice,) = [e for e in record["events"] if e["step"] == "notice"]
    assert "SMS_TEMPLATE_ILLEGAL" in notice["detail"]["error"]
