"""Every route and command of the outside contract is wired in: a module that fails to import
stops the app and the CLI at start-up instead of silently dropping its routes or commands."""

from __future__ import annotations

import subprocess
import sys

from gongkai.web.app import create_app
from tests.support import settings_for

CONTRACT_ROUTES = {
    ("POST", "/api/v1/items"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/{id}/retry"),
    ("GET", "/api/v1/questions/unanswered"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/wechat/{account}"),
    ("GET", "/wechat/{account}"),
    ("POST", "/telegram/{bot}"),
    ("GET", "/p/{id}"),
    ("GET", "/p/{id}/script"),
    ("GET", "/p/{id}/print"),
    ("GET", "/feed.xml"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/admin/"),
}


def test_the_app_has_every_route_of_the_contract(tmp_path):
    app = create_app(settings_for(tmp_path), "unix:///nowhere")
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    canonical = {(m, p.replace("{id:\\d+}", "{id}")) for m, p in routes}
    missing = {
        (m, p) for m, p in CONTRACT_ROUTES if (m, p) not in routes and (m, p) not in canonical
    }
    assert missing == set()


def test_the_cli_has_every_command_group():
    out = subprocess.run(
        [sys.executable, "-m", "gongkai.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("run", "serve", "worker", "publish", "faq", "user", "telegram", "directory"):
        assert f" {command} " in out, command
