"""The ``gongkai`` command line (typer + rich). Bad input: a clear message and exit 1.

Start-up is part of every command's time (a re-import that changes nothing should take well
under a second), so this module and the command modules it registers import only typer and
rich when loaded: each command imports the database, the web and the providers' libraries it
needs inside its function. ``tests/test_cli.py`` holds the line.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from gongkai.config import Settings
    from gongkai.domain.items import ItemIn, ItemRefused

T = TypeVar("T")
app = typer.Typer(
    help="Gongkai (公开): government disclosure to every channel and language.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")

out = Console()
err = Console(stderr=True)


class RoleChoice(StrEnum):
    """``--role``'s choices: storage.models.Role's, in its order (importing that would load
    SQLModel for every command, even ``--help``); tests/test_cli.py holds them equal."""

    viewer = "viewer"
    publisher = "publisher"
    admin = "admin"


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    from gongkai.config import Settings

    try:
        s = Settings()
    except Exception as exc:  # pydantic's ValidationError names the setting
        fail(f"invalid settings: {exc}")
        raise
    if s.sandbox_on:  # every command of a sandboxed deployment stays off the real providers
        from gongkai.sandbox import guard

        guard.arm()
    return s


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine on uvloop when it is installed (``pip install 'gongkai[fast]'``:
    the event loop and its transports in C), else on asyncio's own loop."""
    import asyncio

    try:
        from uvloop import new_event_loop as loop_factory
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro_fn())  # type: ignore[arg-type]


def _logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # alembic ≥ 1.16 announces each of its autogenerate plugins at INFO on every upgrade
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@asynccontextmanager
async def database(s: Settings) -> AsyncIterator[Any]:
    """A migrated database for one command: its session maker, the engine disposed after."""
    from gongkai.storage.db import make_engine, make_sessionmaker, upgrade

    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def read_file(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    if not path.exists():
        fail(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    raise AssertionError


# --- processes ------------------------------------------------------------------------------


@app.command("run")
def run_cmd(
    demo: bool = typer.Option(False, "--demo", help="load the demo county, FAQ and items"),
) -> None:
    """Everything on one machine: migrate, embedded Redis, HTTP and a worker. Ctrl-C stops."""
    from gongkai.cli.runtime import redis_for, run_all

    s = settings()
    if demo:  # the demo always runs in the sandbox: its credentials are valid nowhere else
        from gongkai.cli.demo import demo_settings

        s = demo_settings()
    _logging(s.log_level)
    with redis_for(s) as redis_url:

        async def ready() -> None:
            if demo:
                from gongkai.cli.demo import load_demo

                urls = await load_demo(s, redis_url)
                out.print("[bold green]演示数据已加载 / demo loaded.[/] Open:")
                for u in urls:
                    out.print(f"  {u}", soft_wrap=True)
            out.print(
                f"Gongkai is serving on http://{s.host}:{s.port} (public URL {s.public_url}); "
                "Ctrl-C stops."
            )
            if s.sandbox_on:
                out.print(
                    "[bold yellow]沙箱 / sandbox:[/] nothing is sent to real providers; what "
                    f"each channel received is at {s.public_url.rstrip('/')}/sandbox/"
                )

        try:
            run(lambda: run_all(s, redis_url, on_ready=ready))
        except OSError as exc:
            fail(
                f"cannot serve on {s.host}:{s.port}: {exc.strerror or exc} "
                "(set GONGKAI_PORT to another port)"
            )


@app.command()
def serve() -> None:
    """The web process alone (run workers separately)."""
    from gongkai.cli.runtime import redis_for, run_all

    s = settings()
    _logging(s.log_level)
    with redis_for(s) as redis_url:
        run(lambda: run_all(s, redis_url, worker_on=False))


@app.command()
def worker() -> None:
    """One queue worker alone; run as many as you like, on as many machines."""
    from gongkai.cli.runtime import redis_for, run_all

    s = settings()
    _logging(s.log_level)
    with redis_for(s) as redis_url:
        run(lambda: run_all(s, redis_url, web_on=False))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations."""
    from gongkai.storage.db import upgrade

    s = settings()
    run(lambda: upgrade(s.resolved_database_url, revision))
    out.print(f"database at {revision}: {s.resolved_database_url.split('@')[-1]}")


# --- directory and tokens -------------------------------------------------------------------


@token_app.command("create")
def token_create(
    role: RoleChoice = typer.Option(..., "--role", help="publisher | admin | viewer"),
    name: str = typer.Option(..., "--name", help="who or what uses the token"),
) -> None:
    """Print a new API token (stored hashed: it cannot be shown again)."""
    from gongkai.storage.models import Role
    from gongkai.web.auth import create_token

    s = settings()

    async def go() -> str:
        async with database(s) as maker, maker() as session:
            return await create_token(session, Role(role), name)

    print(run(go))


# --- items ----------------------------------------------------------------------------------


def _load_item(file: Path) -> ItemIn:
    from gongkai.domain.items import ItemRefused, load_item_file

    try:
        return load_item_file(read_file(file))
    except ItemRefused as exc:
        _print_refusal(file, exc)


def _print_refusal(file: Path, exc: ItemRefused) -> NoReturn:
    err.print(f"[bold red]{file}: 不能发布 / refused[/]")
    for e in exc.errors:
        err.print(f"  • [bold]{e.field}[/]: {e.message}", highlight=False)
    raise typer.Exit(1)


@app.command()
def publish(
    file: Path,
    wait: bool = typer.Option(False, "--wait", help="show progress until every delivery has ended"),
    as_user: str = typer.Option("cli", "--as", help="recorded in the audit log as the publisher"),
) -> None:
    """Ingest one approved item (YAML or JSON) and fan it out."""
    from gongkai.cli.publishing import publish_from_cli
    from gongkai.domain.items import ItemRefused

    s = settings()
    item_in = _load_item(file)
    try:
        run(lambda: publish_from_cli(s, item_in, as_user, wait, out))
    except ItemRefused as exc:
        _print_refusal(file, exc)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def render(
    file: Path,
    channel: str = typer.Option(
        ..., "--channel", help="web, wechat_mp, village_group, sms, loudspeaker, telegram"
    ),
    lang: str | None = typer.Option(
        None, "--lang", help="render for this language (e.g. mn, ug, zh)"
    ),
    region: str | None = typer.Option(None, "--region", help="a division code whose target to use"),
    as_json: bool = typer.Option(False, "--json", help="parts with byte/character counts as JSON"),
) -> None:
    """Print what a channel would send, without sending."""
    import json

    from gongkai.cli.publishing import render_preview

    s = settings()
    item_in = _load_item(file)
    try:
        result = run(lambda: render_preview(s, item_in, channel, lang, region))
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{channel}[/] → {result['target']} ({'+'.join(result['languages'])})")
    for note in result["notes"]:
        out.print(f"[yellow]note:[/] {note}")
    for i, part in enumerate(result["parts"], 1):
        out.rule(f"part {i}/{len(result['parts'])} · {part['bytes']} bytes · {part['chars']} chars")
        out.print(part["text"], markup=False, highlight=False, soft_wrap=True)  # exact text
    if result["meta"]:
        out.rule()
        out.print(json.dumps(result["meta"], ensure_ascii=False), markup=False)


@app.command()
def deliveries(
    item: str | None = typer.Option(None, "--item"),
    channel: str | None = typer.Option(None, "--channel"),
    status: str | None = typer.Option(None, "--status"),
    region: str | None = typer.Option(None, "--region"),
    limit: int = typer.Option(200, "--limit"),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on standard output"),
) -> None:
    """The delivery log, newest first; phone numbers masked."""
    from rich.table import Table

    from gongkai.storage.models import DeliveryStatus
    from gongkai.storage.queries import (
        DeliveryFilter,
        deliveries_csv,
        delivery_public,
        list_deliveries,
        target_labels,
    )

    if status and status not in DeliveryStatus.__members__:
        fail(f"--status: one of {', '.join(DeliveryStatus.__members__)}")
    s = settings()

    async def go() -> list[dict[str, Any]]:
        async with database(s) as maker, maker() as session:
            rows = await list_deliveries(
                session,
                DeliveryFilter(
                    item=item, channel=channel, status=status, region=region, limit=limit
                ),
            )
            labels = await target_labels(session, {d.target_id for d in rows if d.target_id})
            return [delivery_public(d, labels.get(d.target_id or -1)) for d in rows]

    rows = run(go)
    if as_csv:
        sys.stdout.write(deliveries_csv(rows))
        return
    table = Table("id", "item", "channel", "region", "target", "lang", "status", "tries", "error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["item"],
            r["channel"],
            r["region"] or "",
            r["target"] or "",
            "+".join(r["languages"]),
            r["status"],
            str(r["attempts"]),
            (r["last_error"] or "")[:60],
        )
    out.print(table)
    out.print(f"{len(rows)} deliveries")


def main() -> None:
    import importlib

    for extra in (
        "gongkai.cli.directory",
        "gongkai.cli.faq",
        "gongkai.cli.users",
        "gongkai.cli.bots",
        "gongkai.cli.schemas",
        "gongkai.cli.report",
    ):
        importlib.import_module(extra)  # registers its commands on ``app``; missing: fail loudly
    try:
        app()
    except Exception as exc:
        from gongkai.cli.embedded_redis import EmbeddedRedisError

        if not isinstance(exc, EmbeddedRedisError):
            raise
        from rich.markup import escape

        err.print(f"[bold red]错误 / error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
