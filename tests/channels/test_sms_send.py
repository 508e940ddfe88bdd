"""SMS sending against the fake Aliyun and Tencent servers: signatures, limits, error codes."""

from __future__ import annotations

import pytest

from gongkai.channels.base import (
    PermanentError,
    TransientError,
    UncertainError,
)
from gongkai.channels.sms import CHANNEL
from gongkai.sandbox import aliyun_sms, tencent_sms
from gongkai.sandbox.server import serve
from tests.channels.sms_cases import (
    CODES,
    PUBLIC,
    SIGN,
    aliyun_account,
    ctx_for,
    make_item,
    make_target,
    phones,
    tencent_account,
)
from tests.servers import free_port

# --- send: Aliyun ------------------------------------------------------------------------------


async def test_aliyun_delivers_the_rendered_text_to_every_number_in_one_request(http) -> None:
    app, state = aliyun_sms.make_app()
    target = make_target(aliyun_account(), phones(3))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        sent = await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base))
    assert len(state.requests) == 1
    assert sent.provider_message_id == state.messages[0].biz_id
    assert sent.extra["accepted"] == 3
    for number in phones(3):
        assert state.texts_to(number) == [rendered.meta["text"]]
    assert {m.out_id for m in state.messages} == {"42-0"}


async def test_aliyun_wrong_secret_is_permanent(http) -> None:
    app, state = aliyun_sms.make_app()
    target = make_target(aliyun_account(access_key_secret="not-the-secret"), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="SignatureDoesNotMatch"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttling.User", 400), ("ServiceUnavailable", 503), ("isp.SYSTEM_ERROR", 200)],
)
async def test_aliyun_throttling_and_outages_are_transient(http, code: str, status: int) -> None:
    app, state = aliyun_sms.make_app()
    state.fail_next(code, status=status)
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(TransientError, match=code):
            await CHANNEL.send(part, ctx_for(http, target, base))
        await CHANNEL.send(part, ctx_for(http, target, base))  # the retry goes through
    assert state.texts_to("13800000000") and len(state.messages) == 1


async def test_aliyun_per_number_daily_limit(http) -> None:
    app, state = aliyun_sms.make_app(per_number_daily_limit=1)
    target = make_target(aliyun_account(), ["13800000000", "13800000001"])
    first = CHANNEL.render(make_item(), make_target(aliyun_account(), ["13800000000"]), PUBLIC)
    both = CHANNEL.render(make_item(id="2026-0114"), target, PUBLIC)
    async with serve(app) as base:
        await CHANNEL.send(first.parts[0], ctx_for(http, target, base))
        with pytest.raises(TransientError, match="BUSINESS_LIMIT_CONTROL") as exc:
            await CHANNEL.send(first.parts[0], ctx_for(http, target, base))
        assert exc.value.retry_after is not None and exc.value.retry_after >= 3600
        sent = await CHANNEL.send(both.parts[0], ctx_for(http, target, base))
    assert sent.provider_message_id
    assert len(state.texts_to("13800000000")) == 1  # over its limit: reported in a receipt
    assert len(state.texts_to("13800000001")) == 1
    assert [r["PhoneNum"] for r in state.receipts] == ["13800000000"]


@pytest.mark.parametrize(
    ("fake", "account", "message"),
    [
        ({"balance": 0}, {}, "out of credit"),
        ({}, {"template_code": "SMS_999"}, "SMS_TEMPLATE_ILLEGAL"),
        ({}, {"sign_name": "别的签名"}, "SMS_SIGNATURE_ILLEGAL"),
        ({}, {"access_key_id": "nobody"}, "InvalidAccessKeyId.NotFound"),
        ({}, {"variable_max_len": 60}, "PARAM_LENGTH_LIMIT"),
        ({"templates": {"SMS_000001": "${title}${doc_number}"}}, {}, "TEMPLATE_MISSING_PARAMETERS"),
    ],
)
async def test_aliyun_refusals_that_retrying_cannot_fix_are_permanent(
    http, fake: dict, account: dict, message: str
) -> None:
    app, state = aliyun_sms.make_app(**fake)
    target = make_target(aliyun_account(**account), ["13800000000"])
    title = "关于进一步做好2026年度城乡居民最低生活保障标准调整及资金发放工作的补充通知"
    part = CHANNEL.render(make_item(title=title), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match=message):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_an_unreachable_provider_is_transient(http) -> None:
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    with pytest.raises(TransientError, match="unreachable"):
        await CHANNEL.send(part, ctx_for(http, target, f"http://127.0.0.1:{free_port()}"))


@pytest.mark.parametrize(
    ("provider", "reference"), [("aliyun", "OutId"), ("tencent", "SessionContext")]
)
async def test_an_answer_lost_after_the_provider_accepted_is_uncertain_not_transient(
    http, provider: str, reference: str
) -> None:
    aliyun = provider == "aliyun"
    fake, account = (aliyun_sms, aliyun_account) if aliyun else (tencent_sms, tencent_account)
    app, state = fake.make_app()
    state.answer_late(2.0)
    if aliyun:
        state.records_lag = True  # QuerySendDetails cannot confirm it yet either
    target = make_target(account(timeout_seconds=0.3), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(UncertainError, match=rf"within 0.3s \({reference} 42-0 in"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert len(state.texts_to("13800000000")) == 1  # it did go out: a retry would be a second


async def test_aliyun_confirms_a_send_whose_answer_was_lost_by_its_out_id(http) -> None:
    app, state = aliyun_sms.make_app()
    state.answer_late(2.0)
    target = make_target(aliyun_account(timeout_seconds=0.3), phones(2))
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        sent = await CHANNEL.send(part, ctx_for(http, target, base))
    assert sent.provider_message_id == "outid:42-0"
    assert "按 OutId 查到已发送" in sent.extra["note"]
    query = next(r for r in state.requests if r["Action"] == "QuerySendDetails")
    assert query["PhoneNumber"] == phones(2)[0] and query["PageSize"] == "50"
    assert [len(state.texts_to(p)) for p in phones(2)] == [1, 1]  # sent once, not again


async def test_an_sms_the_provider_may_have_sent_is_not_sent_again_by_the_worker(
    tmp_path, embedded_redis_url, redis
) -> None:
    """End to end: the delivery goes dead with the reason, and running its job again (as arq's
    at-least-once redelivery would) sends nothing more."""
    from arq import create_pool

    from gongkai.dispatch.queue import arq_settings, enqueue_delivery
    from tests.support import (
        DIRECTORY,
        fetch_deliveries,
        ingest,
        item,
        prepare_db,
        run_workers,
        settings_for,
    )

    app, state = aliyun_sms.make_app()
    state.answer_late(2.0)
    state.records_lag = True
    async with serve(app) as base:
        s = settings_for(tmp_path, aliyun_sms_endpoint=base)
        directory = DIRECTORY.replace(
            "template_code: SMS_000001}", "template_code: SMS_000001, timeout_seconds: 0.3}"
        )
        await prepare_db(s, directory)
        notice = item(id="water-1", kind="notice", doc_number=None, channels=["sms"])
        notice["regions"] = ["150627100201"]
        await ingest(s, embedded_redis_url, notice)
        await run_workers(s, embedded_redis_url)
        (d,), attempts = await fetch_deliveries(s, "water-1")
        assert d.status == "dead", d.last_error
        assert "may have sent it" in d.last_error and "0.3s" in d.last_error
        assert f"OutId {d.id}-0" in d.last_error  # what to look up in Aliyun's send records
        assert [a.outcome for a in attempts[d.id]] == ["uncertain"]
        pool = await create_pool(arq_settings(embedded_redis_url))
        try:
            await enqueue_delivery(pool, d.id)
        finally:
            await pool.aclose()
        await run_workers(s, embedded_redis_url)
    assert len(state.texts_to("13800000000")) == 1
    assert [r["Action"] for r in state.requests] == ["SendSms", "QuerySendDetails"]


async def test_aliyun_fake_refuses_stale_timestamps_and_replayed_nonces(http) -> None:
    from gongkai.channels.sms_providers import aliyun_send_params

    app, _ = aliyun_sms.make_app()
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        old = aliyun_send_params(aliyun_account(), part, out_id="1", timestamp=1e9, nonce="n")
        async with http.post(base + "/", data=old) as resp:
            assert (await resp.json())["Code"] == "InvalidTimeStamp.Expired"
        import time

        fresh = aliyun_send_params(
            aliyun_account(), part, out_id="1", timestamp=time.time(), nonce="n2"
        )
        for expected in ("OK", "SignatureNonceUsed"):
            async with http.post(base + "/", data=fresh) as resp:
                assert (await resp.json())["Code"] == expected


# --- send: Tencent -----------------------------------------------------------------------------


async def test_tencent_delivers_in_e164_with_a_signed_request(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), phones(3))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        sent = await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base, index=2))
    assert len(state.requests) == 1
    assert state.requests[0]["PhoneNumberSet"] == [f"+86{p}" for p in phones(3)]
    assert state.requests[0]["SessionContext"] == "42-2"
    assert sent.extra["accepted"] == 3 and "failed" not in sent.extra
    for number in phones(3):
        assert state.texts_to(number) == [rendered.meta["text"]]
    assert rendered.meta["text"] == (
        f"【{SIGN}】巴图塔嘎查政务公开：关于2026年城乡低保…，详情请登录政府网站查看（2026-0113）"
    )


async def test_tencent_wrong_secret_is_permanent(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(secret_key="wrong"), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match=r"AuthFailure\.SignatureFailure"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_request_throttling_is_transient(http) -> None:
    app, state = tencent_sms.make_app()
    state.fail_next("RequestLimitExceeded")
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(TransientError, match="RequestLimitExceeded"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_daily_limit_fails_one_number_and_the_others_are_sent_once(http) -> None:
    app, state = tencent_sms.make_app(daily_limit_per_number=1)
    numbers = ["13800000000", "13800000001", "13800000002"]
    earlier = CHANNEL.render(
        make_item(id="2026-0100"), make_target(tencent_account(), ["13800000001"]), PUBLIC
    )
    target = make_target(tencent_account(), numbers)
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        await CHANNEL.send(earlier.parts[0], ctx_for(http, target, base))
        before = len(state.requests)
        sent = await CHANNEL.send(part, ctx_for(http, target, base))
    assert len(state.requests) == before + 1
    assert sent.extra["accepted"] == 2
    assert sent.extra["failed"] == ["138****0001 LimitExceeded.PhoneNumberDailyLimit"]
    assert sent.extra["failed_index"] == [1]
    assert "1 of 3 numbers refused" in sent.extra["note"]
    assert len(state.texts_to("13800000000")) == 1 and len(state.texts_to("13800000002")) == 1
    assert len(state.texts_to("13800000001")) == 1  # only the earlier notice


async def test_tencent_same_content_within_30s_is_transient_when_nothing_was_accepted(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        await CHANNEL.send(part, ctx_for(http, target, base))
        with pytest.raises(TransientError, match="PhoneNumberThirtySecondLimit") as exc:
            await CHANNEL.send(part, ctx_for(http, target, base))
        assert exc.value.retry_after == 30
        state.advance(31)
        await CHANNEL.send(part, ctx_for(http, target, base))
    assert len(state.texts_to("13800000000")) == 2


async def test_a_url_in_a_tencent_variable_is_refused_before_tencent_would(http) -> None:
    app, state = tencent_sms.make_app(templates={"1002": "{1}：{2}"}, variable_max_len=None)
    account = tencent_account(
        template_code="1002", template_text="{title}：{link}", variable_max_len=40, link_form="url"
    )
    target = make_target(account, ["13800000000"])
    rendered = CHANNEL.render(make_item(short_codes=CODES), target, PUBLIC)
    assert rendered.refused is not None
    assert f"variable link holds a URL ({PUBLIC}/s/Zh7abc)" in rendered.refused
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="not sent: variable link holds a URL"):
            await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base))
        assert state.requests == []  # a console retry of the refused delivery sends nothing
        # what Tencent would have said had it gone out:
        unmarked = {k: v for k, v in rendered.parts[0].items() if k != "refused"}
        with pytest.raises(PermanentError, match="ProhibitedUseUrlInTemplateParameter"):
            await CHANNEL.send(unmarked, ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_refuses_more_than_200_numbers(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    part = dict(part, phones=[f"+86{p}" for p in phones(201)])
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="PhoneNumberCountLimit"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_an_account_without_credentials_fails_permanently_before_any_request(http) -> None:
    app, state = tencent_sms.make_app()
    account = tencent_account()
    del account["sdk_app_id"]
    target = make_target(account, ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="sdk_app_id missing"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.requests == []
