"""``gongkai run --demo``: an Inner Mongolia county, a few FAQ entries, a policy, its
interpretation and an urgent notice, sent to all six channels through the provider sandbox, so
a newcomer sees every channel work in one command and what arrived where at ``/sandbox/``."""

from __future__ import annotations

from pathlib import Path

from arq import create_pool

from gongkai.config import Settings
from gongkai.dispatch.ingest import ingest_item
from gongkai.dispatch.queue import arq_settings
from gongkai.domain.items import load_item_file
from gongkai.domain.links import page_url
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.directory import import_directory, parse_directory
from gongkai.storage.models import Role
from gongkai.web.auth import create_token

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_ITEMS = ("policy.yaml", "interpretation.yaml", "notice.yaml")


def demo_settings(**overrides: object) -> Settings:
    """The settings of ``gongkai run --demo``: the sandbox on (open to the newcomer), and quiet
    hours off unless set, so the SMS and loudspeaker deliveries arrive at any hour too."""
    import os

    values: dict[str, object] = {"sandbox": "demo"}
    if "GONGKAI_QUIET_HOURS" not in os.environ:
        values["quiet_hours"] = ""
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def load_demo(s: Settings, redis_url: str) -> list[str]:
    engine = make_engine(s.resolved_database_url)
    maker = make_sessionmaker(engine)
    sealer = Sealer(s.resolved_secret_key())
    pool = await create_pool(arq_settings(redis_url))
    base = s.public_url.rstrip("/")
    urls: list[str] = []
    try:
        async with maker() as session:
            await import_directory(
                session, parse_directory((DEMO_DIR / "directory.yaml").read_text("utf-8")), sealer
            )
        try:
            from gongkai.faq.store import import_faq_text

            async with maker() as session:
                await import_faq_text(session, (DEMO_DIR / "faq.yaml").read_text("utf-8"))
        except ModuleNotFoundError:
            pass
        for name in DEMO_ITEMS:
            item_in = load_item_file((DEMO_DIR / name).read_text("utf-8"))
            async with maker() as session:
                result = await ingest_item(
                    session,
                    sealer,
                    item_in,
                    actor="demo",
                    public_url=s.public_url,
                    calendar=WorkCalendar.from_file(s.holidays_file),
                    pool=pool,
                    tz=s.tz,
                )
            urls.append(page_url(s.public_url, result.item.id))
        urls.append(page_url(s.public_url, "demo-ejhl-2026-0113", "mn"))
        urls.append(f"{base}/feed.xml")
        if s.sandbox_on:
            urls.append(f"sandbox: what every channel received {base}/sandbox/")
        async with maker() as session:
            token = await create_token(session, Role.publisher, "demo publisher")
        urls.append(f"publisher token for the API (shown once): {token}")
        password = await _demo_admin(maker)
        urls.append(f"console {base}/admin/ — user demo-admin, password {password} (new each run)")
    finally:
        await pool.aclose()
        await engine.dispose()
    return urls


async def _demo_admin(maker) -> str:  # type: ignore[no-untyped-def]
    """A console admin for the newcomer; its password is replaced on every demo start."""
    import asyncio
    import secrets

    from sqlmodel import select

    from gongkai.console.users import create_user, hash_password
    from gongkai.storage.models import User

    password = secrets.token_urlsafe(9)
    async with maker() as session:
        user = (await session.exec(select(User).where(User.name == "demo-admin"))).first()
        if user is None:
            await create_user(session, "demo-admin", Role.admin, password)
        else:
            user.password_hash = await asyncio.to_thread(hash_password, password)
            user.active = True
            session.add(user)
            await session.commit()
    return password
