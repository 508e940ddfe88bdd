"""What supervisors look at: the deadlines board, residents' questions, the quarterly report."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

from sqlmodel import select

from gongkai.domain.workdays import WorkCalendar
from gongkai.faq.store import get_index
from gongkai.faq.text import normalize_question
from gongkai.storage.models import FaqEntry, Item, Question
from gongkai.storage.types import utcnow
from tests.support import ingest, item, run_workers


def today_shanghai() -> date:
    return utcnow().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()


def table(page: str, table_id: str) -> str:
    return page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]


async def test_deadlines_board_counts_working_days_overdue(site) -> None:
    today = today_shanghai()
    await ingest(site.settings, site.redis_url, item(id="late", issued_at="2025-09-05"))
    await ingest(
        site.settings,
        site.redis_url,
        item(
            id="late-sched",
            kind="notice",
            issued_at="2025-01-02",
            publish_at="2099-01-01T08:00:00+08:00",
            title="定时但已超期的公告",
        ),
    )
    await ingest(
        site.settings,
        site.redis_url,
        item(id="fresh", issued_at=today.isoformat(), title="刚印发的文件"),
    )
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/deadlines")
    late = table(page, "late-items")
    calendar = WorkCalendar()
    due = date(2025, 10, 10)  # 20 working days after 2025-09-05, over the National Day holiday
    expected = calendar.workdays_between(due, today)
    assert re.search(
        rf"2025-10-10</td>\s*<td>{today.isoformat()}</td>\s*"
        rf'<td class="num late">{expected}</td>',
        late,
    )
    assert "定时但已超期的公告" in late and "尚未上网" in late
    assert "刚印发的文件" not in late


async def test_policies_without_an_interpretation_after_three_working_days(site) -> None:
    today = today_shanghai()
    await ingest(site.settings, site.redis_url, item(id="pol-1", title="旧政策"))
    await ingest(site.settings, site.redis_url, item(id="pol-2", title="新政策"))
    async with site.maker() as session:  # pol-1 was put online weeks ago
        pol = await session.get(Item, "pol-1")
        pol.published_at = datetime(2026, 10, 9, 2, tzinfo=UTC)
        pol.interpretation_due = date(2026, 10, 14)
        session.add(pol)
        await session.commit()
    viewer = await site.login("viewer")
    board = table(await viewer.text("/admin/deadlines"), "uninterpreted")
    assert "旧政策" in board and "新政策" not in board  # pol-2's three days have not run out
    days = WorkCalendar().workdays_between(date(2026, 10, 14), today)
    assert f'<td class="num late">{days}</td>' in board
    publisher = await site.login("publisher")
    jd = item(
        id="jd-1",
        kind="interpretation",
        interprets="pol-1",
        title="一图读懂旧政策",
        doc_number=None,
    )
    r = await publisher.http.post(
        "/api/v1/items", json=jd, headers={"X-CSRF-Token": publisher.csrf}
    )
    assert r.status == 201
    assert "旧政策" not in table(await viewer.text("/admin/deadlines"), "uninterpreted")
    await publisher.post("/admin/items/jd-1/recall")  # a recalled interpretation does not count
    assert "旧政策" in table(await viewer.text("/admin/deadlines"), "uninterpreted")


async def _ask(
    site,
    text: str,
    region: str,
    *,
    answered: bool = False,  # type: ignore[no-untyped-def]
    lang: str = "zh",
    asked_at: datetime | None = None,
) -> None:
    async with site.maker() as session:
        session.add(
            Question(
                platform="wechat",
                region_code=region,
                language=lang,
                text=text,
                normalized=normalize_question(text),
                answered=answered,
                asked_at=asked_at or utcnow(),
            )
        )
        await session.commit()


async def test_unanswered_questions_grouped_and_added_to_the_faq(site) -> None:
    await _ask(site, "牧区饮水补贴怎么申请？", "150627100201")
    await _ask(site, "牧区饮水补贴怎么申请", "150627101201")
    await _ask(site, "牧区饮水补贴 怎么申请！！！", "150627100201", lang="mn")
    await _ask(site, "垃圾几点收？", "150627100202")
    await _ask(site, "低保多少钱", "150627100201", answered=True)
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/questions")
    groups = re.findall(
        r"<h2 id=\"qg-\d+\">([^<]+)</h2>\s*<p class=\"meta-line\"><strong>(\d+)</strong>", page
    )
    assert groups[0][1] == "3" and "牧区饮水补贴" in groups[0][0]
    assert groups[1] == ("垃圾几点收？", "1")
    assert "低保多少钱" not in page
    first = page.split('id="qg-2"')[0]
    assert "巴图塔嘎查" in first and "门克庆嘎查" in first and "mn" in first
    assert "加入常见问题" not in page  # viewers read; publishers and admins answer
    assert (await viewer.post("/admin/questions/faq", {"normalized": "x"})).status == 403

    publisher = await site.login("publisher")
    normalized = normalize_question("牧区饮水补贴怎么申请")
    r = await publisher.post(
        "/admin/questions/faq",
        {
            "normalized": normalized,
            "question": "牧区饮水补贴怎么申请？",
            "keywords": "",
            "answer": "",
        },
    )
    assert r.status == 422
    page = await r.text()
    assert "至少一个关键词" in page and "请填写答复" in page and 'aria-invalid="true"' in page
    r = await publisher.post(
        "/admin/questions/faq",
        {
            "normalized": normalized,
            "question": "牧区饮水补贴怎么申请？",
            "keywords": "饮水补贴，牧区 饮水",
            "answer": "携带户口本到嘎查村委会登记，每户每年补贴300元。",
            "domain": "涉农补贴",
        },
    )
    assert r.status == 200 and r.url.path == "/admin/questions"
    page = await r.text()
    assert "3 条提问标记为已解答" in page
    assert "牧区饮水补贴" not in page.split("</main>")[0].split("已加入常见问题")[1]
    async with site.maker() as session:
        entry = (await session.exec(select(FaqEntry))).one()
        assert entry.keywords == ["饮水补贴", "牧区", "饮水"] and entry.domain == "涉农补贴"
        rows = (await session.exec(select(Question).where(Question.normalized == normalized))).all()
        assert {(q.answered, q.faq_id) for q in rows} == {(True, entry.id)}
    # the bots answer it now
    index = await get_index(site.client.app)
    answer = index.ask("牧区饮水补贴怎么申请", "150627100201")
    assert answer.kind == "answer" and answer.id == entry.id
    r = await publisher.post(
        "/admin/questions/faq",
        {"normalized": normalized, "question": "再来一次", "keywords": "x", "answer": "y"},
    )
    assert r.status == 422 and "已不在未解答列表中" in await r.text()


async def test_quarterly_report_page_and_csv(site) -> None:
    site.robot.valid_keys = {"robot-1", "robot-3"}  # robot-2 was removed from its group
    await ingest(site.settings, site.redis_url, item(id="p-1", channels=["web"]))
    await ingest(
        site.settings,
        site.redis_url,
        item(
            id="n-1",
            kind="notice",
            domain="市政服务",
            title="停水通知",
            doc_number=None,
            channels=["web", "village_group"],
        ),
    )
    await run_workers(site.settings, site.redis_url)
    await ingest(
        site.settings,
        site.redis_url,
        item(
            id="n-2",
            kind="notice",
            domain="市政服务",
            title="撤回的通知",
            doc_number=None,
            channels=["web", "village_group"],
        ),
    )
    admin = await site.login("admin")
    await admin.post("/admin/items/n-2/recall")
    await _ask(site, "问题一", "150627100201", answered=True)
    await _ask(site, "问题二", "150627100201")
    await _ask(site, "问题三", "150627100201")
    await _ask(site, "去年的问题", "150627100201", asked_at=utcnow() - timedelta(days=400))
    page = await admin.text("/admin/report")
    quarter = re.search(r"(\d{4})年第([一二三四])季度政务公开工作报表", page)
    assert quarter
    assert '本季度上网条目共 <strong id="items-total">2</strong> 条' in page
    assert "群众提问 3 条，已解答 1 条，未解答 2 条" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 4
    assert 'role="img"' in page and '<title id="chart-reach-t">' in page
    reach = table(page, "reach-table")
    assert re.search(
        r"村民微信群（企业微信群机器人）</th><td class=\"num\">2</td>"
        r"<td class=\"num\">3</td><td class=\"num\">66.7%</td>",
        reach,
    )
    assert re.search(
        r"公开网页</th><td class=\"num\">2</td><td class=\"num\">2</td>"
        r"<td class=\"num\">100.0%</td>",
        reach,
    )
    q = f"{quarter.group(1)}Q{'一二三四'.index(quarter.group(2)) + 1}"
    r = await admin.get(f"/admin/report.csv?quarter={q}")
    assert r.headers["Content-Disposition"] == f'attachment; filename="gongkai-report-{q}.csv"'
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0] == ["section", "name", "count", "delivered", "planned", "reach_rate"]
    assert ["quarter", q, "2", "", "", ""] in rows
    assert ["items_by_domain", "市政服务", "1", "", "", ""] in rows
    assert ["items_by_domain", "社会救助", "1", "", "", ""] in rows
    assert [
        "reach_by_channel",
        "village_group 村民微信群（企业微信群机器人）",
        "",
        "2",
        "3",
        "0.6667",
    ] in rows
    assert ["questions", "unanswered", "2", "", "", ""] in rows
    empty = await admin.text("/admin/report?quarter=2001Q1")
    assert '<strong id="items-total">0</strong>' in empty and "没有数据" in empty
    assert (await admin.get("/admin/report?quarter=2026Q5")).status == 400
