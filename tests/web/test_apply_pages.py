"""The public form /apply and the status page, in Chinese and Mongolian, with no script."""

from __future__ import annotations

import re

FORM = {
    "applicant_type": "natural_person",
    "name": "其木格",
    "phone": "13700001111",
    "description": "苏布尔嘎镇2026年草原生态补奖发放明细",
    "reply_channel": "sms",
    "language": "mn",
}


def no_script(html: str) -> None:
    assert "<script" not in html and " style=" not in html and " on" + "click" not in html


async def test_the_form_in_both_languages_under_a_strict_policy(gk) -> None:
    r = await gk.get("/apply")
    html = await r.text()
    assert r.status == 200 and "政府信息公开申请" in html and 'lang="zh-Hans"' in html
    assert "script-src 'none'" in r.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
    no_script(html)
    r = await gk.get("/apply?lang=mn")
    html = await r.text()
    assert 'lang="mn-Mong"' in html and "ᠭᠤᠶᠤᠬᠤ" in html and "/static/mongolian.css" in html
    assert 'name="language" value="mn"' in html
    no_script(html)
    assert (await gk.get("/static/apply.css")).status == 200


async def test_apply_on_the_form_then_follow_with_the_code(gk) -> None:
    r = await gk.post("/apply", data=FORM, headers={"X-Forwarded-For": "198.51.100.7"})
    html = await r.text()
    assert r.status == 201, html
    number = re.search(r'id="number">([^<]+)<', html).group(1)
    code = re.search(r'id="code" class="code">([^<]+)<', html).group(1)
    assert number.startswith("YSQ-") and len(code) == 8
    r = await gk.get(f"/apply/{number}?code={code}&lang=zh")
    html = await r.text()
    assert r.status == 200 and "待确认" in html and "其木格" not in html
    r = await gk.post("/apply/lookup", data={"number": number.lower(), "code": code})
    assert r.status == 200
    for url in (f"/apply/{number}?code=AAAAAAAA", f"/apply/YSQ-2026-999999?code={code}"):
        r = await gk.get(url)
        assert r.status == 404 and "申请编号或查询码不对" in await r.text()
    r = await gk.get(f"/apply/{number}")
    assert r.status == 200 and f'value="{number}"' in await r.text()  # the lookup form


async def test_refusals_keep_what_was_typed_and_name_the_fields(gk) -> None:
    bad = {**FORM, "language": "zh", "phone": "", "name": "名\x01字", "description": ""}
    r = await gk.post("/apply", data=bad)
    html = await r.text()
    assert r.status == 422
    assert 'href="#f-name"' in html and 'href="#f-description"' in html
    assert 'value="sms" checked' in html  # the choice is kept
    r = await gk.post("/apply", data=b"name=" + b"x" * (70 * 1024))
    assert r.status == 413
    r = await gk.post("/apply", data=b"name=%ff%fe")
    assert r.status == 400


async def test_guessing_codes_on_the_page_is_limited_with_a_page(gk) -> None:
    for _ in range(30):
        r = await gk.get(
            "/apply/YSQ-2026-000001?code=GUESS123", headers={"X-Forwarded-For": "192.0.2.9"}
        )
        assert r.status == 404
    r = await gk.get(
        "/apply/YSQ-2026-000001?code=GUESS123", headers={"X-Forwarded-For": "192.0.2.9"}
    )
    assert r.status == 429 and "text/html" in r.headers["Content-Type"]
    assert "提交过于频繁" in await r.text()
