"""``gongkai faq …``: import, export and try the FAQ as the bots answer it.

Registered on the main CLI by importing this module (``cli.main()`` does). ``faq ask --json``
is a contract: one object ``{"id", "answer", "score"}`` (``id`` null when nothing matched);
with TEXT ``-`` every line of standard input is answered, one JSON line each, so an evaluation
set can be run in one process instead of paying start-up per question.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gongkai.cli.main import app, database, fail, out, read_file, run, settings

if TYPE_CHECKING:  # the engine and its word tables: loaded by the commands that answer
    from gongkai.faq.engine import FaqAnswer, FaqIndex

faq_app = typer.Typer(help="The FAQ the bots answer from.", no_args_is_help=True)
app.add_typer(faq_app, name="faq")


@faq_app.command("import")
def faq_import(
    file: Path,
    prune: bool = typer.Option(
        False, "--prune", help="also delete entries and synonyms the file does not hold"
    ),
) -> None:
    """Load a FAQ file (YAML); entries are matched by id, so importing twice changes nothing."""
    from gongkai.faq.engine import FaqFormatError, parse_faq_yaml
    from gongkai.faq.store import import_entries

    s = settings()
    text = read_file(file)
    try:
        entries, synonyms = parse_faq_yaml(text)
    except FaqFormatError as exc:
        fail(f"{file}: {exc}")
        raise

    async def go():  # type: ignore[no-untyped-def]
        async with database(s) as maker, maker() as session:
            return await import_entries(session, entries, synonyms, prune=prune)

    report = run(go)
    out.print(report.summary(), highlight=False)


@faq_app.command("export")
def faq_export(
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
) -> None:
    """Print the FAQ in the file format (import reads it back unchanged)."""
    from gongkai.faq.store import export_faq_text

    s = settings()

    async def go() -> str:
        async with database(s) as maker, maker() as session:
            return await export_faq_text(session)

    text = run(go)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"written to {output}")


def _as_json(answer: FaqAnswer) -> str:
    return json.dumps(
        {"id": answer.id, "answer": answer.answer, "score": answer.score}, ensure_ascii=False
    )


@faq_app.command("ask")
def faq_ask(
    text: str = typer.Argument(..., help="the question, or - to answer each line of stdin"),
    region: str | None = typer.Option(None, "--region", help="the asker's division code"),
    lang: str = typer.Option("zh", "--lang", help="answer in this language when it has one"),
    as_json: bool = typer.Option(False, "--json", help='print {"id", "answer", "score"}'),
) -> None:
    """Answer a question exactly as the bots would (nothing is recorded)."""
    from gongkai.faq.store import get_index

    if region is not None and not (region.isdigit() and len(region) in (2, 4, 6, 9, 12)):
        fail(f"--region: '{region}' is not a division code (6, 9 or 12 digits)")
    s = settings()

    async def go() -> FaqIndex:
        async with database(s) as maker:
            return await get_index(maker, hotline=s.hotline)

    index = run(go)
    if text == "-":
        for line in sys.stdin:
            answer = index.ask(line.rstrip("\r\n"), region, lang)
            sys.stdout.write(_as_json(answer) + "\n")
            sys.stdout.flush()
        return
    answer = index.ask(text, region, lang)
    if as_json:
        print(_as_json(answer))
        return
    head = {"answer": answer.id or "", "choose": "?", "fallback": "—"}[answer.kind]
    out.print(f"[bold]{head}[/] (score {answer.score:.2f})", highlight=False)
    out.print(answer.answer, markup=False, highlight=False)


@faq_app.command("import-wechat")
def faq_import_wechat(
    account: str = typer.Option(..., "--account", help="the official account's name"),
) -> None:
    """Turn the account's built-in keyword auto-replies (get_current_autoreply_info) into FAQ
    entries, so switching to Gongkai loses none of the answers residents already get."""
    from gongkai.cli.runtime import redis_for

    s = settings()
    with redis_for(s) as redis_url:
        try:
            report, notes = run(lambda: _import_wechat(s, redis_url, account))
        except ValueError as exc:
            fail(str(exc))
            raise
    for note in notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    out.print(report.summary(), highlight=False)


async def _import_wechat(s: Any, redis_url: str, account: str) -> tuple[Any, list[str]]:
    import aiohttp
    from redis.asyncio import Redis

    from gongkai.channels.base import PermanentError, TransientError
    from gongkai.channels.wechat_api import WechatApi
    from gongkai.dispatch.planning import Directory
    from gongkai.faq.store import entries_from_autoreply, import_entries
    from gongkai.storage.crypto import Sealer

    async with database(s) as maker:
        redis = Redis.from_url(redis_url)
        try:
            async with maker() as session:
                config = await Directory(session, Sealer(s.resolved_secret_key())).account(
                    "wechat_mp", account
                )
            if config is None:
                raise ValueError(f"--account: no official account named '{account}'")
            async with aiohttp.ClientSession() as http:
                api = WechatApi(
                    s.wechat_api_base, str(config.get("app_id") or ""),
                    str(config.get("app_secret") or ""), http, redis,
                    token_endpoint=str(config.get("token_endpoint") or "stable"),
                )  # fmt: skip
                try:
                    rules = await api.autoreply_rules()
                except (TransientError, PermanentError) as exc:
                    raise ValueError(f"WeChat refused get_current_autoreply_info: {exc}") from None
            entries, notes = entries_from_autoreply(rules)
            async with maker() as session:
                report = await import_entries(session, entries, {})
            return report, notes
        finally:
            await redis.aclose()
