"""The applications API: applying, following with the code, the workflow steps by role, and
hostile input at the public doors."""

from __future__ import annotations

import statistics
import time

APPLICATION = {
    "applicant_type": "law_firm",
    "name": "内蒙古某律师事务所",
    "phone": "13812345678",
    "description": "伊金霍洛旗2026年集体土地征收补偿标准文件",
    "purpose": "代理咨询",
    "reply_channel": "online",
}


def client(n: int) -> dict[str, str]:
    """A distinct client address (the test client is a trusted proxy, as nginx would be)."""
    return {"X-Forwarded-For": f"203.0.113.{n}"}


async def apply(gk, n: int = 1, **over: object) -> dict:
    r = await gk.post("/api/v1/applications", json={**APPLICATION, **over}, headers=client(n))
    assert r.status == 201, await r.text()
    return await r.json()


async def step(gk, number: str, role: str = "publisher", **body: object):  # type: ignore[no-untyped-def]
    return await gk.post(f"/api/v1/applications/{number}/steps", json=body, headers=gk.auth(role))


async def test_apply_then_follow_with_the_code(gk) -> None:
    receipt = await apply(gk)
    assert receipt["number"].startswith("YSQ-") and len(receipt["code"]) == 8
    assert receipt["lookup_url"] == f"http://gongkai.test/apply/{receipt['number']}"
    r = await gk.get(f"/api/v1/applications/{receipt['number']}?code={receipt['code']}")
    assert r.status == 200
    view = await r.json()
    assert view["status"] == "submitted" and view["status_label"] == "待确认"
    assert "律师" not in await r.text() and "13812345678" not in await r.text()
    for url in (
        f"/api/v1/applications/{receipt['number']}?code=WRONG123",
        "/api/v1/applications/YSQ-2026-999999?code=" + receipt["code"],
        "/api/v1/applications/not-a-number?code=x",
        f"/api/v1/applications/{receipt['number']}",
    ):
        r = await gk.get(url, headers=client(9))
        assert r.status == 404, url
        assert await r.json() == {"error": "no such application, or the code is wrong"}


async def test_the_workflow_steps_by_role_and_the_reply_letter(gk) -> None:
    number = (await apply(gk))["number"]
    assert (await step(gk, number, "viewer", step="register")).status == 403
    r = await gk.post(f"/api/v1/applications/{number}/steps", json={"step": "register"})
    assert r.status == 401
    r = await step(gk, number, step="register")
    assert r.status == 200
    record = await r.json()
    assert record["status"] == "registered" and record["due_on"] and record["workdays_left"] == 20
    assert (await step(gk, number, step="register")).status == 409  # not twice
    assert (await step(gk, number, step="accept", handler="国土办小王")).status == 200
    r = await step(gk, number, step="extend", approver="", workdays=10)
    assert r.status == 422
    r = await step(gk, number, step="extend", approver="张主任", workdays=21)
    assert r.status == 422
    r = await step(gk, number, step="extend", approver="张主任", workdays=10, reason="需协调")
    assert (await r.json())["extension_approver"] == "张主任"
    r = await step(gk, number, step="answer", outcome="withheld")
    assert r.status == 409 and "reasons" in (await r.json())["message"]
    r = await step(
        gk, number, step="answer", outcome="withheld", reason="third_party", reply_text="涉及他人"
    )
    assert r.status == 200
    record = await r.json()
    assert record["outcome"] == "withheld" and record["status"] == "answered"
    letter = record["reply_letter"]
    assert (
        "内蒙古某律师事务所" in letter and "保护第三方合法权益" in letter and "行政复议" in letter
    )
    assert [e["step"] for e in record["events"]] == [
        "submit", "register", "review", "extension", "answer",
    ]  # fmt: skip
    assert (await step(gk, number, step="archive")).status == 200
    # a viewer reads the file with the applicant masked; a publisher (a handler) in the clear
    r = await gk.get(f"/api/v1/applications/{number}/record", headers=gk.auth("viewer"))
    masked = await r.json()
    assert masked["applicant"] == "内蒙******" and masked["contact"] == "138****5678"
    assert masked["applicant_detail"] == {} and "13812345678" not in await r.text()
    r = await gk.get(f"/api/v1/applications/{number}/record", headers=gk.auth("publisher"))
    assert (await r.json())["applicant_detail"]["phone"] == "13812345678"
    r = await gk.get("/api/v1/applications", headers=gk.auth("viewer"))
    assert [a["number"] for a in (await r.json())["applications"]] == [number]


async def test_hostile_bodies_are_refused_by_name(gk) -> None:
    r = await gk.post("/api/v1/applications", data=b"x" * (65 * 1024), headers=client(2))
    assert r.status == 413
    r = await gk.post("/api/v1/applications", data=b"[" * 50 + b"]" * 50, headers=client(2))
    assert r.status == 422
    r = await gk.post("/api/v1/applications", json=["a"], headers=client(2))
    assert r.status == 422
    r = await gk.post("/api/v1/applications", data=b"\xff\xfe", headers=client(2))
    assert r.status == 400
    bad = {**APPLICATION, "name": "张\x07三", "description": "y" * 6000, "extra": 1}
    r = await gk.post("/api/v1/applications", json=bad, headers=client(2))
    assert r.status == 422
    assert {e["field"] for e in (await r.json())["errors"]} == {"name", "description", "extra"}
    r = await gk.get("/api/v1/applications/YSQ-2026-000001?code=" + "A" * 33, headers=client(2))
    assert r.status == 400
    r = await gk.get("/api/v1/applications?limit=0", headers=gk.auth("viewer"))
    assert r.status == 400


async def test_applying_and_guessing_codes_are_limited_per_address(gk) -> None:
    for _ in range(10):
        await apply(gk, n=3)
    r = await gk.post("/api/v1/applications", json=APPLICATION, headers=client(3))
    assert r.status == 429
    await apply(gk, n=4)  # another address is not held up
    for _ in range(30):
        r = await gk.get("/api/v1/applications/YSQ-2026-000001?code=GUESS", headers=client(5))
        assert r.status == 404
    r = await gk.get("/api/v1/applications/YSQ-2026-000001?code=GUESS", headers=client(5))
    assert r.status == 429


async def test_a_wrong_code_and_an_unknown_number_take_the_same_time(gk) -> None:
    """Interleaved (the order swapped every round), each request from a fresh address so both
    pay for a new miss counter; the medians differ by far less than a row's loading."""
    number = (await apply(gk))["number"]
    times: dict[str, list[float]] = {"wrong": [], "unknown": []}
    urls = {
        "wrong": f"/api/v1/applications/{number}?code=WRONG123",
        "unknown": "/api/v1/applications/YSQ-2026-999999?code=WRONG123",
    }
    for i in range(30):
        order = ("wrong", "unknown") if i % 2 else ("unknown", "wrong")
        for j, kind in enumerate(order):
            start = time.perf_counter()
            r = await gk.get(urls[kind], headers=client(2 * i + j + 10))
            times[kind].append(time.perf_counter() - start)
            assert r.status == 404
    ratio = statistics.median(times["wrong"]) / statistics.median(times["unknown"])
    assert 0.6 < ratio < 1.6, ratio
