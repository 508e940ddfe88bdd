"""Section 三 of the yearly report counted from a seeded 2026, through the storage query and
``gongkai report annual`` (CSV and HTML)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import Channel
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage import application_flow as flow
from gongkai.storage.application_queries import annual
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
SECRET = "annual-secret"


def at(day: date) -> flow.Moment:
    return flow.Moment(datetime(day.year, day.month, day.day, 2, tzinfo=UTC), TZ)


async def seed(url: str) -> None:
    """2025–2027, one application per case of the counting rules."""
    sealer = Sealer(SECRET)
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:

        async def new(kind: str, day: date, channel: Channel = Channel.in_person):  # type: ignore[no-untyped-def]
            form = ApplicationIn(
                applicant_type=kind, name="申请人", phone="13800000000", description=f"{kind}{day}"
            )
            app, _ = await flow.submit(s, sealer, CAL, form, channel=channel, when=at(day))
            return app

        async def close(app, day: date, outcome: str, reason: str | None = None) -> None:  # type: ignore[no-untyped-def]
            await flow.answer(
                s, CAL, app, actor="办理", outcome=outcome, reason=reason, reply_text="",
                letter="", when=at(day),
            )  # fmt: skip

        # received last year, answered this year: carried in, counted in the results
        await close(await new("natural_person", date(2025, 12, 22)), date(2026, 1, 9), "granted")
        f = await new("natural_person", date(2025, 12, 29))
        await close(f, date(2026, 1, 5), "unavailable", "not_held")
        # received and answered last year: in no row of 2026
        await close(await new("enterprise", date(2025, 11, 3)), date(2025, 11, 20), "granted")
        # this year's
        c = await new("law_firm", date(2026, 3, 2))
        await close(c, date(2026, 3, 20), "withheld", "third_party")
        await new("research", date(2026, 12, 21))  # still open at the year's end
        e = await new("natural_person", date(2026, 5, 6))
        await flow.request_correction(
            s, CAL, e, actor="审核", note="不明确", period_workdays=10, when=at(date(2026, 5, 7))
        )
        await flow.abandon_overdue(s, CAL, when=at(date(2026, 6, 15)))
        h = await new("social_welfare", date(2026, 12, 10))
        await close(h, date(2027, 1, 5), "partial")  # answered next year: carried over
        await new("natural_person", date(2026, 12, 30), Channel.web)  # never confirmed
    await engine.dispose()


@pytest.fixture
async def seeded(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GONGKAI_SECRET_KEY", SECRET)
    url = f"sqlite+aiosqlite:///{tmp_path / 'gongkai.sqlite3'}"
    await upgrade(url)
    await seed(url)
    return url


@pytest.fixture
async def seeded_postgres(postgres_url):  # type: ignore[no-untyped-def]
    await upgrade(postgres_url)
    engine = make_engine(postgres_url)
    async with engine.begin() as conn:  # this test's own rows only
        await conn.execute(text("DELETE FROM applicationevent"))
        await conn.execute(text("DELETE FROM application"))
    await engine.dispose()
    await seed(postgres_url)
    return postgres_url


async def test_the_counts_of_a_seeded_year(seeded) -> None:
    await check_counts(seeded)


@pytest.mark.postgres
async def test_the_counts_of_a_seeded_year_on_postgresql(seeded_postgres) -> None:
    await check_counts(seeded_postgres)


async def check_counts(url: str) -> None:
    table = await _annual(url, 2026)
    counts = {r.key: ({k: v for k, v in r.counts.items() if v} if r.counts is not None else None)
              for r in table.rows}  # fmt: skip
    assert counts["new"] == {
        "natural_person": 1, "law_firm": 1, "research": 1, "social_welfare": 1,
    }  # fmt: skip
    assert counts["carried_in"] == {"natural_person": 2}
    assert counts["granted"] == {"natural_person": 1}
    assert counts["partial"] == {}  # answered in 2027
    assert counts["withheld"] is None  # a heading: its reasons carry the numbers
    assert counts["withheld.third_party"] == {"law_firm": 1}
    assert counts["unavailable.not_held"] == {"natural_person": 1}
    assert counts["other.no_correction"] == {"natural_person": 1}
    assert counts["total"] == {"natural_person": 3, "law_firm": 1}
    assert counts["carried_out"] == {"research": 1, "social_welfare": 1}
    row = table.row
    assert (
        row("carried_in").total + row("new").total == row("total").total + row("carried_out").total
    )
    # the table's shape is the national format's: 8 + 3 + 5 + 3 reasons
    assert sum(1 for r in table.rows if r.level == 2) == 19
    next_year = await _annual(url, 2027)
    assert next_year.row("carried_in").counts["research"] == 1
    assert next_year.row("partial").counts["social_welfare"] == 1


async def _annual(url: str, year: int):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        table = await annual(s, year)
    await engine.dispose()
    return table


def test_the_command_writes_csv_and_html(seeded, tmp_path) -> None:
    import gongkai.cli.report  # noqa: F401  (registers ``report`` as main() does)
    from gongkai.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["report", "annual", "--year", "2026", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["项目", "自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构",
                       "其他", "总计"]  # fmt: skip
    by_label = {r[0]: r[1:] for r in rows[1:]}
    assert by_label["一、本年新收政府信息公开申请数量"] == ["1", "0", "1", "1", "1", "0", "4"]
    assert by_label["3.危及“三安全一稳定”"] == ["0"] * 7
    assert by_label["4.保护第三方合法权益"] == ["0", "0", "0", "0", "1", "0", "1"]
    assert by_label["四、结转下年度继续办理"][-1] == "2"
    out = tmp_path / "annual.html"
    result = runner.invoke(
        app, ["report", "annual", "--year", "2026", "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "三、收到和处理政府信息公开申请情况（2026年度）" in html
    assert html.count('<tr class="level-2"') == 19
    result = runner.invoke(app, ["report", "annual", "--year", "20266"])
    assert result.exit_code == 1
