"""``gongkai telegram …``: run a resident bot by long polling (development, no public URL), or
point Telegram's webhook at this service (production).

Registered on the main CLI by importing this module (add it to ``cli.main()``'s list).
"""

from __future__ import annotations

import typer

from gongkai.cli.main import app, fail, out, run, settings

telegram_app = typer.Typer(help="Telegram bots for residents.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")


@telegram_app.command("poll")
def telegram_poll(
    bot: str = typer.Option(..., "--bot", help="the bot's name in the directory"),
) -> None:
    """Answer the bot's chats by long polling until Ctrl-C (removes its webhook first)."""
    from gongkai.bots.telegram_bot import poll_updates
    from gongkai.cli.runtime import redis_for

    s = settings()
    out.print(f"polling Telegram as '{bot}' via {s.telegram_api_base}; Ctrl-C stops.")
    with redis_for(s) as redis_url:
        try:
            run(lambda: poll_updates(s, redis_url, bot))
        except ValueError as exc:
            fail(f"--bot: {exc}")


@telegram_app.command("webhook")
def telegram_webhook(
    bot: str = typer.Option(..., "--bot", help="the bot's name in the directory"),
    url: str | None = typer.Option(
        None, "--url", help="default: GONGKAI_PUBLIC_URL/telegram/<bot>"
    ),
) -> None:
    """Point the bot's webhook here, with its webhook_secret as the secret token."""
    s = settings()
    target = url or f"{s.public_url.rstrip('/')}/telegram/{bot}"

    async def go() -> None:
        from gongkai.bots.telegram_bot import bot_for
        from gongkai.cli.main import database
        from gongkai.dispatch.planning import Directory
        from gongkai.storage.crypto import Sealer

        async with database(s) as maker, maker() as session:
            config = await Directory(session, Sealer(s.resolved_secret_key())).account(
                "telegram", bot
            )
        if config is None:
            raise ValueError(f"no Telegram bot named '{bot}' in the directory")
        if not config.get("webhook_secret"):
            raise ValueError(f"bot '{bot}' has no webhook_secret; add one to the directory")
        client = bot_for(s, config)
        try:
            await client.set_webhook(target, secret_token=str(config["webhook_secret"]))
        finally:
            await client.session.close()

    try:
        run(go)
    except ValueError as exc:
        fail(f"--bot: {exc}")
    out.print(f"webhook of '{bot}' set to {target}")
