"""``gongkai report annual --year 2026``: section 三 of the yearly disclosure report (the table
of applications received and how each was answered), as CSV, HTML or a table on the terminal.

Registered on the main CLI by importing this module (``cli.main()`` does).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from gongkai.cli.main import app, database, fail, out, run, settings
from gongkai.domain.annual_table import COLUMNS, AnnualTable
from gongkai.domain.applications import APPLICANT_LABELS
from gongkai.domain.bounds import EARLIEST_DAY, LATEST_DAY

report_app = typer.Typer(help="Reports that the law asks for.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def annual_html(table: AnnualTable) -> str:
    """The table as a standalone HTML page (the console shows the same partial)."""
    from gongkai.channels.rendering import environment

    env = environment(None, autoescape=True)  # the package's HTML templates, as the pages use
    return env.get_template("applications/annual_report.html.j2").render(
        table=table, columns=COLUMNS, labels=APPLICANT_LABELS
    )


@report_app.command("annual")
def annual(
    year: int = typer.Option(..., "--year", help="the report's year"),
    fmt: str = typer.Option("table", "--format", help="table | csv | html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
) -> None:
    """Section 三 of the yearly report: applications carried over, received, answered by
    outcome and reason, by applicant type, and carried over to next year."""
    from gongkai.domain.workdays import WorkCalendar
    from gongkai.storage.application_flow import abandon_overdue, now_in
    from gongkai.storage.application_queries import annual as annual_counts

    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:
        fail(f"--year: {EARLIEST_DAY.year}–{LATEST_DAY.year}")
    if fmt not in ("table", "csv", "html"):
        fail("--format: table, csv or html")
    s = settings()

    async def go() -> AnnualTable:
        async with database(s) as maker, maker() as session:
            # an application whose correction period ran out counts as 其他处理 (视为放弃)
            await abandon_overdue(
                session, WorkCalendar.from_file(s.holidays_file), when=now_in(s.tz)
            )
            return await annual_counts(session, year)

    table = run(go)
    if fmt == "table" and output is None:
        shown = Table(title=f"{year}年度 三、收到和处理政府信息公开申请情况")
        shown.add_column("项目")
        for c in COLUMNS:
            shown.add_column(APPLICANT_LABELS[c], justify="right")
        shown.add_column("总计", justify="right")
        for row in table.rows:
            cells = [""] * (len(COLUMNS) + 1)
            if row.counts is not None:
                cells = [str(row.counts[c.value]) for c in COLUMNS] + [str(row.total)]
            shown.add_row(row.label, *cells)
        out.print(shown)
        return
    text = annual_html(table) if fmt == "html" else table.csv()
    if output is None:
        out.file.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")
