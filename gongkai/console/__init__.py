"""The console under ``/admin/`` for publishers, supervisors and admins (imported by create_app).

Server-rendered pages with a little script for live progress; every page works from the
keyboard and without loading anything from outside the service.
"""

from __future__ import annotations

from aiohttp import web

from gongkai.console import (
    actions,
    events,
    views_application_publish,
    views_applications,
    views_auth,
    views_dashboard,
    views_deadlines,
    views_items,
    views_log,
    views_publish,
    views_questions,
    views_report,
)
from gongkai.console.gate import console_gate
from gongkai.console.sessions import LOGIN_TRIES, login_tries
from gongkai.web.keys import REDIS_URL

MODULES = (
    views_auth,
    views_dashboard,
    views_items,
    actions,
    events,
    views_publish,
    views_log,
    views_deadlines,
    views_questions,
    views_report,
    views_applications,
    views_application_publish,
)


def setup(app: web.Application) -> None:
    app[LOGIN_TRIES] = login_tries(app[REDIS_URL])
    app.middlewares.append(console_gate)
    for module in MODULES:
        app.add_routes(module.routes)
