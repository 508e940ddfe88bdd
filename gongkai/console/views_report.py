"""The quarterly report: a printable page with server-drawn charts, and the same figures as CSV."""

from __future__ import annotations

from aiohttp import web

from gongkai.console.console_queries import now_local
from gongkai.console.render import channel_title, message_page, page
from gongkai.console.report_queries import Quarter, quarter_report, report_csv
from gongkai.console.svg import bar_chart
from gongkai.domain.bounds import EARLIEST_DAY, LATEST_DAY
from gongkai.domain.catalog import KIND_LABELS
from gongkai.web.keys import MAKER, SETTINGS

routes = web.RouteTableDef()


def _quarter(request: web.Request) -> Quarter | None:
    text = request.query.get("quarter", "")
    if not text:
        return Quarter.containing(now_local(request.app[SETTINGS].tz).date())
    return Quarter.parse(text)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


@routes.get("/admin/report")
async def report_page(request: web.Request) -> web.Response:
    quarter = _quarter(request)
    if quarter is None:
        return await message_page(
            request,
            400,
            "季度格式不对",
            f"季度应写作 2026Q4 这样的形式，年份在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 之间。",
        )
    async with request.app[MAKER]() as session:
        report = await quarter_report(session, quarter, request.app[SETTINGS].tz)
    charts = {
        "domain": bar_chart(
            report.by_domain, title=f"{quarter.label}各领域条目数", chart_id="chart-domain"
        ),
        "channel": bar_chart(
            [(channel_title(c), n) for c, n in report.items_by_channel],
            title=f"{quarter.label}各渠道发布条目数",
            chart_id="chart-channel",
        ),
        "reach": bar_chart(
            [(channel_title(r.channel), r.rate or 0.0) for r in report.reach],
            title=f"{quarter.label}各渠道到达率",
            chart_id="chart-reach",
            fmt=_percent,
            max_value=1.0,
        ),
        "questions": bar_chart(
            [("已解答", report.questions_answered), ("未解答", report.questions_unanswered)],
            title=f"{quarter.label}群众提问解答情况",
            chart_id="chart-questions",
        ),
    }
    return await page(
        request,
        "report.html.j2",
        active="report",
        report=report,
        quarter=quarter,
        charts=charts,
        kinds=KIND_LABELS,
    )


@routes.get("/admin/report.csv")
async def report_download(request: web.Request) -> web.Response:
    quarter = _quarter(request)
    if quarter is None:
        raise web.HTTPBadRequest(
            text=f"quarter: like 2026Q4, years {EARLIEST_DAY.year}-{LATEST_DAY.year}"
        )
    async with request.app[MAKER]() as session:
        report = await quarter_report(session, quarter, request.app[SETTINGS].tz)
    return web.Response(
        body=("\ufeff" + report_csv(report, channel_title)).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="gongkai-report-{quarter}.csv"'},
    )
