"""The console's applications list shows the handler's due-day reminders the worker recorded,
and only those of the current due day of applications still running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gongkai.dispatch.application_reminders import remind_handlers
from gongkai.dispatch.worker import close_deps, open_deps
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage import application_flow as flow
from tests.console.conftest import csrf_in
from tests.console.test_admin_applications import register_visit


async def test_reminders_show_on_the_applications_list(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    number = await register_visit(publisher)
    await publisher.post(
        f"/admin/applications/{number}/steps", {"step": "accept", "handler": "民政办小李"}
    )
    page = await publisher.text("/admin/applications")
    assert "到期提醒" not in page
    deps, engine = open_deps(site.settings, site.redis_url)
    try:
        async with deps.maker() as session:
            app = await flow.by_number(session, number)
            assert app is not None and app.due_on is not None
        due = datetime(app.due_on.year, app.due_on.month, app.due_on.day, 2, tzinfo=UTC)
        made = await remind_handlers(deps, WorkCalendar(), now=due)
        assert [(r.number, r.kind) for r in made] == [(number, "due")]
        assert await remind_handlers(deps, WorkCalendar(), now=due + timedelta(hours=1)) == []
    finally:
        await close_deps(deps, engine)
    page = await publisher.text("/admin/applications")
    assert "到期提醒" in page
    assert f"{number}</a>：今天到期（答复期限 {app.due_on.isoformat()}，承办人 民政办小李）" in page
    await publisher.post(
        f"/admin/applications/{number}/steps", {"step": "answer", "outcome": "granted"}
    )
    assert "到期提醒" not in await publisher.text("/admin/applications")  # answered: gone
