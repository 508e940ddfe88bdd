"""The delivery log: filters, keyset pages without gaps or repeats, CSV of all rows, masking."""

from __future__ import annotations

import csv
import io
import re

from tests.support import ingest, item


async def _many(site, n: int) -> None:  # type: ignore[no-untyped-def]
    """n county-wide items: each one web page and three village groups (4n deliveries)."""
    for i in range(n):
        await ingest(
            site.settings,
            site.redis_url,
            item(
                id=f"n-{i:03d}",
                kind="notice",
                title=f"通知{i}",
                doc_number=None,
                channels=["web", "village_group"],
            ),
        )


def ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<td><a href="/admin/deliveries/(\d+)">#', page)]


async def test_keyset_pages_cover_every_row_once(site) -> None:
    await _many(site, 30)  # 120 deliveries: one full page of 100 and a second of 20
    viewer = await site.login("viewer")
    first = await viewer.text("/admin/deliveries")
    page1 = ids(first)
    assert len(page1) == 100 and page1 == sorted(page1, reverse=True)
    next_link = re.search(r'href="/admin/deliveries\?after=(\d+)" rel="next"', first)
    assert next_link and int(next_link.group(1)) == page1[-1]
    second = await viewer.text(f"/admin/deliveries?after={next_link.group(1)}")
    page2 = ids(second)
    assert len(page2) == 20 and max(page2) < min(page1)
    assert 'rel="next"' not in second and "最新一页" in second
    assert set(page1) | set(page2) == set(range(1, 121))


async def test_filters_narrow_the_log(site) -> None:
    await _many(site, 3)
    await ingest(
        site.settings, site.redis_url, item(id="sms-1", channels=["sms"], regions=["150627100201"])
    )
    viewer = await site.login("viewer")

    async def rows(query: str) -> list[int]:
        return ids(await viewer.text(f"/admin/deliveries?{query}"))

    assert len(await rows("")) == 13
    assert len(await rows("channel=web")) == 3
    assert len(await rows("item=n-001")) == 4
    assert len(await rows("item=n-001&channel=village_group")) == 3
    assert len(await rows("region=150627100")) == 7  # two villages × 3 items + the SMS
    assert len(await rows("region=150627101201")) == 3
    assert len(await rows("status=queued")) == 13
    assert len(await rows("status=delivered")) == 0
    assert len(await rows("since=2099-01-01")) == 0
    assert len(await rows("until=2000-01-01")) == 0
    page = await viewer.text("/admin/deliveries?channel=sms")
    assert "138****0000" in page and "13800000000" not in page
    page = await viewer.text("/admin/deliveries?status=nonsense&since=yesterday")
    assert "未知状态 nonsense" in page and "since：日期格式应为 YYYY-MM-DD" in page


async def test_csv_has_every_matching_row_with_masked_numbers(site) -> None:
    await _many(site, 30)
    await ingest(
        site.settings, site.redis_url, item(id="sms-1", channels=["sms"], regions=["150627100201"])
    )
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/deliveries?channel=sms")
    assert 'href="/admin/deliveries.csv?channel=sms"' in page
    r = await viewer.get("/admin/deliveries.csv")
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    text = (await r.read()).decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 121  # every row, not one page
    assert len({row["id"] for row in table}) == 121
    sms = [row for row in table if row["channel"] == "sms"]
    assert sms[0]["target"] == "138****0000, 139****0001"
    assert "13800000000" not in text
    only_web = list(
        csv.DictReader(
            io.StringIO(
                (await (await viewer.get("/admin/deliveries.csv?channel=web")).read()).decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert len(only_web) == 30 and {row["channel"] for row in only_web} == {"web"}
